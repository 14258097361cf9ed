from django.contrib import admin

from .models import Liveblog, Post


@admin.register(Liveblog)
class LiveblogAdmin(admin.ModelAdmin):
    list_display = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["__str__", "liveblog", "created", "updated"]
    list_filter = ["liveblog"]
    search_fields = ["body"]

    def get_readonly_fields(self, request, obj=None):
        # Pages follow one liveblog each: a post moved to another would linger on the old one's pages.
        return ["liveblog"] if obj else []
