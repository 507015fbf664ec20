from django import template
from django.conf import settings
from django.utils.translation import get_language

register = template.Library()


@register.inclusion_tag("frontend/_language.html", takes_context=True)
def language_switch(context):
    """The language switcher: a button for each other language, named in that language
    (settings.LANGUAGES holds each name in its own language, so it is never translated)."""
    request = context.get("request")
    current = get_language()
    return {
        "languages": [(code, name) for code, name in settings.LANGUAGES if code != current],
        "next": request.get_full_path() if request else "/",
    }
