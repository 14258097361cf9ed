from django.contrib import admin

from .models import Board
from .services import boards_delete


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "created", "thumbnail_version"]
    prepopulated_fields = {"slug": ["title"]}
    search_fields = ["title", "slug"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("thumbnail")

    # The admin's deletes through the service, which locks the boards before the cascade
    # deletes their strokes (an undo or a clear at the same moment would deadlock with it).
    def delete_model(self, request, obj):
        boards_delete(board_ids=[obj.pk])

    def delete_queryset(self, request, queryset):
        boards_delete(board_ids=list(queryset.values_list("pk", flat=True)))
