from django import forms


class PostForm(forms.Form):
    body = forms.CharField(
        max_length=10_000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What's happening?"}),
    )
