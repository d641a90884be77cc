"""SPEC 7 and 14: stopped runs with a reason, forks' parents, reset options; runs stopped on purpose re-labelled."""

import django.db.models.deletion
from django.db import migrations, models


# The reasons RunManager wrote when it ended a run on purpose, before `stopped` existed (a copy, as
# migrations must not import the models' current code). A clean shutdown wrote "interrupted", as a
# dead process's run is closed: those cannot be told apart and stay `error`.
STOPPED_ON_PURPOSE = ("reset by client before it completed", "instance deleted", "closed after being idle",
                      "evicted to make room for a new instance")


def relabel_stopped_runs(apps, schema_editor):
    Run = apps.get_model("runs", "Run")
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        # The DELETE below would queue deferred foreign-key checks on runs_run, and PostgreSQL refuses the
        # index this migration creates there afterwards ("pending trigger events"): check them at once.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for reason in STOPPED_ON_PURPOSE:
        Run.objects.filter(state="error", error=reason).update(state="stopped", reason=reason, error="")
    # History keeps no run without an episode; open ones are closed (and dropped) by the next start-up.
    Run.objects.filter(episodes__isnull=True).exclude(state__in=["running", "paused"]).delete()
    if postgres:
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


def unlabel_stopped_runs(apps, schema_editor):
    Run = apps.get_model("runs", "Run")
    for run in Run.objects.filter(state="stopped").only("pk", "reason"):
        Run.objects.filter(pk=run.pk).update(state="error", error=run.reason or "stopped", reason="")


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0003_vector_steps'),
    ]

    operations = [
        migrations.AddField(
            model_name='episode',
            name='options',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='run',
            name='parent_episode_num',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='run',
            name='parent_run',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='forks', to='runs.run'),
        ),
        migrations.AddField(
            model_name='run',
            name='parent_step_num',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='run',
            name='reason',
            field=models.TextField(blank=True, default='', help_text='Why a stopped run was stopped.'),
        ),
        migrations.AlterField(
            model_name='run',
            name='state',
            field=models.CharField(choices=[('idle', 'Idle'), ('running', 'Running'), ('paused', 'Paused'), ('completed', 'Completed'), ('stopped', 'Stopped'), ('error', 'Error')], default='running', max_length=10),
        ),
        migrations.RunPython(relabel_stopped_runs, unlabel_stopped_runs),
    ]

