"""select (see README)."""

from .svit_core import SVIT_CORE_SIZE, ShortfallError, balance, core, diversity, mix
