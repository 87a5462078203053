"""Call an API route function in-process, as FastAPI would after solving its dependencies.

The page reuses the API's handlers (same checks, same code path) instead of copying them.
A handler's dependencies are the app's long-lived parts (``ctx``, ``workflows``) and the
caller (``principal``); the page's own routes resolve those through the same dependency
types, including the role checks, and hand them over here. Passing only the parameters the
handler declares keeps the page working when a handler gains or drops one of them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from renewal.errors import ModelUnavailableError, RenewalError
from service.problems import ProblemError

T = TypeVar("T")


def call_route(handler: Callable[..., Any], **values: Any) -> Any:
    """``handler(**values)`` restricted to the parameters it declares; a required one that
    is not given is a programming error (TypeError), never silently defaulted."""
    parameters = inspect.signature(handler).parameters
    missing = [name for name, p in parameters.items()
               if name not in values and p.default is inspect.Parameter.empty]
    if missing:
        raise TypeError(f"{handler.__name__} needs {', '.join(missing)}")
    return handler(**{name: value for name, value in values.items() if name in parameters})


def attempt(work: Callable[[], T]) -> tuple[T | None, str | None]:
    """A section's data, or why it has none: the page shows the reason in that section
    instead of failing as a whole (no model loaded, no data directory, no scoring run)."""
    try:
        return work(), None
    except ProblemError as exc:
        return None, exc.detail
    except ModelUnavailableError:
        return None, "no model is loaded yet"
    except (RenewalError, OSError) as exc:
        return None, f"the data cannot be read ({type(exc).__name__})"
