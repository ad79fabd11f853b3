"""What the security tests attack with: sign-in users, a pickle that would leave a mark if it ran, and a
GraphQL mutation another site's page could try to send."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

from streamlit_app import auth

# Cheap hashes (1,000 iterations) keep sign-in tests fast; both users' hashes cost the same.
USERS = {
    "olga": {"password_hash": auth.hash_password("op-secret", iterations=1000), "role": "operator"},
    "vic": {"password_hash": auth.hash_password("view-secret", iterations=1000), "role": "viewer"},
}

LAUNCH_MUTATION = (
    'mutation { launchPipelineExecution(executionParams: {selector: {pipelineName: "ingestion_job"}}) { __typename } }'
)


class Planted:
    """An object whose unpickling would create a file: the attack a model loader must never fall for."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_era_model(marker: Path) -> bytes:
    """A model file of the earlier format (valid checksummed header, then a pickle) that plants `marker`."""
    payload = pickle.dumps(Planted(marker))
    return b"RECOMART-MODEL 2 %s\n" % hashlib.sha256(payload).hexdigest().encode() + payload
