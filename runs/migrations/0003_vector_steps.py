from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0002_run_owner'),
    ]

    operations = [
        migrations.AddField(
            model_name='episode',
            name='env_index',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
    ]
