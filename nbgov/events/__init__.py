"""The event catalogue: every type of fact nbgov records, typed and versioned."""

from nbgov.events.catalogue import *  # noqa: F403
from nbgov.events.catalogue import __all__ as __all__
from nbgov.events.catalogue import check_type_name as check_type_name
