from django import forms


class BoardForm(forms.Form):
    title = forms.CharField(
        max_length=100, strip=True, widget=forms.TextInput(attrs={"placeholder": "Ideas for Friday"})
    )
