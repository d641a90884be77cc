"""The ledger in the admin: history is read-only (it is a record), runs can only be deleted."""

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db.models import Case, ExpressionWrapper, F, FloatField, When
from django.forms.models import BaseInlineFormSet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from gymenv.templatetags.dashboard import duration, short_id, to_second
from runs.models import Episode, Run, Step

admin.site.site_header = admin.site.site_title = "gymsite"
admin.site.index_title = "The ledger: runs, episodes and steps"
admin.site.enable_nav_sidebar = False  # its 300 px are the run list's: it fits 1280 px without it


def checked_id(model, object_id: str, from_field: str | None = None):
    """The id of a change URL as its field's type; a 404 for one that cannot name a row ("abc" for an int)."""
    field = model._meta.pk if from_field is None else model._meta.get_field(from_field)
    try:
        return field.to_python(object_id)
    except ValidationError:
        raise Http404(f"{object_id[:80]!r} is not a {model._meta.verbose_name} id") from None


class ReadOnlyAdmin(admin.ModelAdmin):
    def get_object(self, request, object_id, from_field=None):
        checked_id(self.model, object_id, from_field)  # Django would redirect to the index, as for a deleted row
        return super().get_object(request, object_id, from_field)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the change page then shows every field read-only


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class FirstRowsFormSet(BaseInlineFormSet):
    """An inline showing only its first rows: a run can have a million episodes."""

    limit = 100

    def get_queryset(self):
        if not hasattr(self, "_first_rows"):
            self._first_rows = super().get_queryset()[: self.limit]
        return self._first_rows


class EpisodeInline(ReadOnlyInline):
    model = Episode
    formset = FirstRowsFormSet
    verbose_name_plural = f"episodes (the first {FirstRowsFormSet.limit}; all of them under Episodes)"
    fields = ("episode_num", "seed", "options", "total_steps", "total_reward", "final_reward", "done", "terminated",
              "truncated", "abandoned", "success", "started_at", "ended_at")
    readonly_fields = fields
    ordering = ("episode_num",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("observation_json", "observation_zlib", "reset_info")


def _per_completed_episode(field: str) -> Case:
    # Database-side division: one query for the whole changelist page, no per-row work.
    return Case(
        When(completed_episodes=0, then=None),
        default=ExpressionWrapper(F(field) * 1.0 / F("completed_episodes"), output_field=FloatField()),
        output_field=FloatField(),
    )


class RunChangeList(ChangeList):
    # The list never shows the env's spec and kwargs (a few KB each): leave them in the database.
    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer("env_spec", "env_kwargs")


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    # Short ids and compact columns: the list fits 1280 px (full UUIDs wrapped over four lines).
    list_display = ("short_run_id", "env_id", "state", "why", "progress", "steps", "average_reward",
                    "success_rate", "created", "run_duration", "dashboard")
    list_display_links = ("short_run_id",)
    list_select_related = ("parent_run",)
    list_filter = ("state", "env_id")
    search_fields = ("run_id", "env_id", "instance_id")
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) of a large history on every page view is wasted work
    inlines = [EpisodeInline]
    readonly_fields = fields = (
        "run_id", "env_id", "instance_id", "state", "reason", "error", "forked_from", "num_episodes",
        "max_steps_per_episode",
        "success_threshold", "completed_episodes", "successful_episodes", "total_steps", "total_reward",
        "all_episodes", "created_at", "started_at", "ended_at", "env_kwargs", "env_spec")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            avg_reward=_per_completed_episode("total_reward"),
            rate=_per_completed_episode("successful_episodes"),
        )

    def get_changelist(self, request, **kwargs):
        return RunChangeList

    @admin.display(description="episodes")
    def all_episodes(self, run):
        episodes = reverse("admin:runs_episode_changelist") + f"?run={run.pk}"
        steps = reverse("admin:runs_step_changelist") + f"?episode__run={run.pk}"
        return format_html('<a href="{}">all episodes, paginated</a> · <a href="{}">all its steps, in order</a>',
                           episodes, steps)

    @admin.display(description="run", ordering="run_id")
    def short_run_id(self, run):
        return format_html('<code title="{}">{}</code>', run.pk, short_id(run.pk))

    @admin.display(description="steps", ordering="total_steps")
    def steps(self, run):
        return run.total_steps

    @admin.display(description="created", ordering="created_at")
    def created(self, run):
        return to_second(run.created_at)

    @admin.display(description="duration")
    def run_duration(self, run):
        if run.started_at is None:
            return "-"
        return duration(((run.ended_at or timezone.now()) - run.started_at).total_seconds())

    @admin.display(description="")
    def dashboard(self, run):
        return format_html('<a href="/dashboard/runs/{}/">dashboard</a>', run.pk)

    @admin.display(description="episodes", ordering="completed_episodes")
    def progress(self, run):
        return f"{run.completed_episodes}/{run.num_episodes}" if run.num_episodes else f"{run.completed_episodes}"

    @admin.display(description="why")
    def why(self, run):
        said = run.reason or run.error or ""
        # Clipped, the whole of it in the tooltip: an env's traceback message would widen the list past 1280 px.
        text = format_html('<span title="{}">{}</span>', said, said if len(said) <= 32 else said[:31] + "…")
        if run.parent_run_id is None:
            return text
        return format_html("{}{}fork of {}", text, format_html("<br>") if said else "", self.forked_from(run))

    @admin.display(description="forked from")
    def forked_from(self, run):
        if run.parent_run_id is None:
            return ""
        url = reverse("admin:runs_run_change", args=[run.parent_run_id])
        return format_html('<a href="{}">{}</a> episode {} step {}', url, str(run.parent_run_id)[:8],
                           run.parent_episode_num, run.parent_step_num)

    @admin.display(description="avg reward", ordering="avg_reward")
    def average_reward(self, run):
        return None if run.avg_reward is None else round(run.avg_reward, 3)

    @admin.display(description="success", ordering="rate")
    def success_rate(self, run):
        return None if run.rate is None else f"{run.rate:.0%}"


@admin.register(Episode)
class EpisodeAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "short_run", "total_steps", "total_reward", "done", "success", "abandoned", "started",
                    "episode_duration")
    list_select_related = ("run",)
    list_filter = ("done", "success", "abandoned")
    search_fields = ("run__run_id",)
    list_per_page = 100
    show_full_result_count = False
    readonly_fields = fields = (
        "run", "episode_num", "seed", "options", "all_steps", "total_steps", "total_reward", "final_reward", "done",
        "terminated", "truncated", "abandoned", "success", "started_at", "ended_at", "observation", "reset_info")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("run").defer("run__env_spec", "run__env_kwargs")

    @admin.display(description="run", ordering="run_id")
    def short_run(self, episode):
        return format_html('<code title="{}">{}</code>', episode.run_id, short_id(episode.run_id))

    @admin.display(description="started", ordering="started_at")
    def started(self, episode):
        return to_second(episode.started_at)

    @admin.display(description="duration")
    def episode_duration(self, episode):
        return duration(((episode.ended_at or timezone.now()) - episode.started_at).total_seconds())

    @admin.display(description="steps")
    def all_steps(self, episode):
        url = reverse("admin:runs_step_changelist") + f"?episode={episode.pk}"
        return format_html('<a href="{}">all {} steps, paginated</a>', url, episode.total_steps)


@admin.register(Step)
class StepAdmin(ReadOnlyAdmin):
    list_display = ("step_num", "episode", "short_run", "reward", "terminated", "truncated", "action", "time")
    list_select_related = ("episode",)
    # In time order: episodes' ids grow with time and steps' numbers within them (the (episode, step_num) index).
    ordering = ("episode_id", "step_num")
    list_filter = ("terminated", "truncated")
    search_fields = ("episode__run__run_id",)
    list_per_page = 100
    show_full_result_count = False
    readonly_fields = fields = (
        "episode", "step_num", "action", "reward", "terminated", "truncated", "info", "observation", "created_at")

    def get_queryset(self, request):
        # The changelist never shows observations: leave the (possibly large) blobs in the database.
        return super().get_queryset(request).defer("observation_json", "observation_zlib")

    def lookup_allowed(self, lookup, value, request=None):
        # ?episode__run=<run id>: one run's steps (linked from the run's page), without a filter listing every run.
        return lookup == "episode__run" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="run")
    def short_run(self, step):
        return format_html('<code title="{}">{}</code>', step.episode.run_id, short_id(step.episode.run_id))

    @admin.display(description="time", ordering="created_at")
    def time(self, step):
        return to_second(step.created_at)

    def get_object(self, request, object_id, from_field=None):
        # The change page does show it: fetch this one row whole.
        return Step.objects.select_related("episode").filter(pk=checked_id(Step, object_id)).first()
