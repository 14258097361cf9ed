from django import forms

from .models import Post


class PostForm(forms.Form):
    body = forms.CharField(
        max_length=Post._meta.get_field("body").max_length,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What's happening?"}),
    )
