"""Which labels judge candidates (held out) and which train them: decided by content, never chosen.

The rule, in full:

* **Content key.** An input's content is normalised before it is hashed: text is Unicode NFKC,
  case-folded, NFKC again (case folding can leave characters NFKC would change), with every run
  of whitespace collapsed to one space and the ends stripped; an image is its stored file bytes as
  they are. The content key is the SHA-256 (hex) of the normalised UTF-8 text, or of the image
  bytes (for images that is the store's ``payload_sha256``).
* **Split.** A label is held out when ``HMAC-SHA256(key = site name, content key)``, read as a
  fraction in [0, 1) from its first 8 bytes, is below ``store.holdout_fraction``. Inputs with the
  same content therefore always land on the same side, and the site name as key gives each site
  its own split. No caller (API, CLI, GUI, operator or supervisor) can choose it. An input keeps
  the split of its first label (the store enforces this), so labels given before this rule, when
  the split was a hash of the input id, keep theirs.
* **No duplicate trains.** Training never reads a train label whose content key equals the content
  key of any held-out label, of any epoch (see ``edge_agent.store.inputs.labelled_inputs``): this
  also covers labels split by input id before this rule.
* **Held-out epochs.** Every candidate judged on a held-out set (a stage decision whose accuracy
  gate ran both models on its labels) wears it a little: the candidates that reach the gates are
  chosen by people who see the results. Once ``store.holdout_reuse_limit`` distinct candidates
  have been judged on the current held-out set, a new epoch starts: held-out labels given from then
  on belong to it and the gates use only the current epoch's labels. Older held-out labels stay
  evaluation history and are still never trained on.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass
from typing import Final

TRAIN: Final = "train"
HOLDOUT: Final = "holdout"
#: Distinct candidates judged on one held-out set before labels start a new one
#: (``store.holdout_reuse_limit``).
DEFAULT_HOLDOUT_REUSE_LIMIT: Final = 10


def normalise_text(text: str) -> str:
    """NFKC, case-folded, NFKC again, whitespace runs collapsed to one space, ends stripped."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


def content_key(kind: str, payload: bytes) -> str:
    """SHA-256 (hex) of the input's normalised content: text as :func:`normalise_text`, images as stored."""
    if kind == "text":
        try:
            payload = normalise_text(payload.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            pass  # not text the API would have taken; its bytes are its content
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class SplitRule:
    """The split of a site: keyed by its name, ``holdout_fraction`` of all contents held out."""

    site: str
    holdout_fraction: float

    def position(self, key: str) -> float:
        """Where ``key`` falls in [0, 1) for this site; the same key always falls at the same place."""
        digest = hmac.new(self.site.encode("utf-8"), key.encode("ascii"), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def split_of(self, key: str) -> str:
        return HOLDOUT if self.position(key) < self.holdout_fraction else TRAIN

    def split_for(self, kind: str, payload: bytes) -> str:
        return self.split_of(content_key(kind, payload))
