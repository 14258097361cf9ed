from django.contrib import admin

from .models import Message, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "staff_only"]
    prepopulated_fields = {"slug": ["title"]}


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["__str__", "room", "user", "created"]
    list_filter = ["room"]
    search_fields = ["text", "user__username"]

    # Messages reach open pages only when sent over a socket (rooms.services.message_create).
    def has_add_permission(self, request):
        return False
