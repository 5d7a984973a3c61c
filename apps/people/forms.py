"""The admin's CSV import form: a file for the dry run, the same text (hidden) to commit."""

from django import forms
from django.core.exceptions import ValidationError

MAX_CSV_BYTES = 5 * 1024 * 1024


class PeopleImportForm(forms.Form):
    file = forms.FileField(
        required=False, label="CSV file", widget=forms.FileInput(attrs={"accept": ".csv,text/csv"})
    )
    # The checked text travels back with "Import now", so the commit imports exactly what the
    # dry run showed.
    text = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"hidden": True})
    )
    commit = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > MAX_CSV_BYTES:
                raise ValidationError({"file": f"The file is larger than {MAX_CSV_BYTES} bytes."})
            try:
                data["text"] = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ValidationError({"file": "The CSV must be UTF-8."}) from None
        if not data.get("text", "").strip():
            raise ValidationError({"file": "Choose a CSV file."})
        return data
