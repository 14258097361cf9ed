from django.contrib import admin

from .models import Board


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "created", "thumbnail_version"]
    prepopulated_fields = {"slug": ["title"]}
    search_fields = ["title", "slug"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("thumbnail")
