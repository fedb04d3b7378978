"""Views of the example: every response is JSON, so the check script can read it."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

CATALOG = "demo:django:articles"
ARTICLES = {  # slug -> (score, categories)
    "rink-report": (5, ["hockey", "sports"]),
    "power-play": (3, ["hockey"]),
    "eagle-putt": (4, ["golf"]),
    "sourdough": (1, ["cooking"]),
}


def activity(request):
    """SESSION_STORE_ACTIVITY: the event each request records, (item, categories) or None."""
    if request.path.startswith("/article/"):
        slug = request.path.rsplit("/", 1)[-1]
        return f"article:{slug}", ARTICLES.get(slug, (0, []))[1]
    return None  # other pages record nothing


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def home(request):
    return JsonResponse({"user": request.session.get("user")})


@csrf_exempt
def login(request):
    user = request.POST["user"]
    request.session.cycle_key()  # SESSION.ROTATE: a new id, the visit's activity kept
    request.session["user"] = user
    request.session.save()
    # Join this session to the "beta" group so it gets the beta group's notifications.
    request.intelligence.enrich(join=["demo:django:beta"])
    return JsonResponse({"user": user})


def article(request, slug):
    a = request.intelligence.activity  # the TOUCH reply of this very page view
    return JsonResponse(
        {
            "article": slug,
            "events": a.events if a else 0,
            "unique": a.unique if a else 0,
            "seen_before": a.seen_before if a else False,
        }
    )


def recommended(request):
    items = request.intelligence.surface(CATALOG, count=3)
    return JsonResponse({"items": [_text(i) for i in items]})


def inbox(request):
    notes = request.intelligence.inbox()
    return JsonResponse({"inbox": [{"id": _text(n.id), "payload": _text(n.payload)} for n in notes]})


@csrf_exempt
def logout_everywhere(request):
    return JsonResponse({"revoked": request.intelligence.logout_everywhere()})
