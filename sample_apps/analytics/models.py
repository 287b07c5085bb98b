"""Page views, kept in their own database (``DATABASES["analytics"]``, see
``sample_project.routers``): the shape of a project with a second database."""

from django.db import models


class PageView(models.Model):
    path = models.CharField(max_length=255)
    viewed_at = models.DateTimeField()
    #: The viewer, by id: a foreign key cannot cross databases.
    user_id = models.BigIntegerField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["path", "viewed_at"], name="analytics_path_viewed_idx"),
            models.Index(fields=["viewed_at"], name="analytics_viewed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.path} at {self.viewed_at}"
