from django.contrib import admin
from django.urls import include, path

from gymenv import views
from gymsite.api import api

urlpatterns = [
    path("", include("gymenv.dashboard.urls")),
    path("dashboard/frame/<str:instance_id>.png", views.frame, name="frame"),
    path("admin/", admin.site.urls),
    path("", api.urls),
]

handler404 = "gymenv.views.not_found"
handler500 = "gymenv.views.server_error"
