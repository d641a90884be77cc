"""The dashboard's routes; all under /dashboard/ (or `/`), so gymsite/app.py sends them through
Django's full request cycle (sessions, CSRF, the admin's auth), not the lean API one."""

from django.urls import path

from gymenv.dashboard import controls, signin, views

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/feed.json", views.feed_json, name="dashboard-feed"),
    path("dashboard/runs/", views.history, name="dashboard-history"),
    path("dashboard/runs/<uuid:run_id>/", views.run_page, name="dashboard-run"),
    path("dashboard/runs/<uuid:run_id>/episodes/<int:episode_num>/", views.episode_page, name="dashboard-episode"),
    path("dashboard/runs/<uuid:run_id>/episodes/<int:episode_num>/replay.json", views.replay_json,
         name="dashboard-replay"),
    path("dashboard/runs/<uuid:run_id>/episodes/<int:episode_num>/replay.gif", views.replay_gif,
         name="dashboard-replay-gif"),
    path("dashboard/compare/", views.compare, name="dashboard-compare"),
    path("dashboard/instances/", controls.instance_open, name="dashboard-open"),
    path("dashboard/instances/<str:instance_id>/delete", controls.instance_delete, name="dashboard-delete"),
    path("dashboard/instances/<str:instance_id>/run/<str:action>", controls.run_control, name="dashboard-run-control"),
    path("dashboard/sign-in", signin.sign_in, name="sign-in"),
    path("dashboard/sign-out", signin.sign_out, name="sign-out"),
]
