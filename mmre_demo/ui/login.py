"""Who may write annotations. Off by default (anyone types a name). With `MMRE_ANNOTATION_LOGIN=1`, a
public demo stays public (visitors see predictions) but writing to the store needs a login, and the
login name is the annotator name:

* on a Hugging Face Space (`SPACE_ID` is set): the Space's OAuth login (`gr.LoginButton`; the Space's
  README needs `hf_oauth: true`);
* elsewhere: a sign-in form in the app, checked against `MMRE_ANNOTATORS` ("alice:secret,bob:pw") or the
  file `MMRE_ANNOTATORS_FILE` (one `name:password` per line). Gradio's own `auth=` is not used: it
  would lock visitors out of the predictions as well.
"""

from __future__ import annotations

import hmac
import logging
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from mmre_demo.annotations import clean_annotator
from mmre_demo.data.schema import InputError

log = logging.getLogger(__name__)

LOGIN_ENV, ANNOTATORS_ENV, ANNOTATORS_FILE_ENV = "MMRE_ANNOTATION_LOGIN", "MMRE_ANNOTATORS", "MMRE_ANNOTATORS_FILE"


class LoginMode(str, Enum):
    OFF = "off"  # anyone annotates under the name they type
    PASSWORD = "password"  # the app's sign-in form
    HUGGINGFACE = "huggingface"  # the Space's OAuth login


def _credentials(raw: str) -> dict[str, str]:
    pairs = [p.strip() for chunk in raw.splitlines() for p in chunk.split(",") if p.strip()]
    creds = {}
    for p in pairs:
        name, sep, password = p.partition(":")
        if sep and name.strip() and password:
            creds[name.strip()] = password
        else:
            log.warning("%s: an entry without name:password was ignored", ANNOTATORS_ENV)
    return creds


@dataclass(frozen=True)
class AnnotatorLogin:
    mode: LoginMode = LoginMode.OFF
    credentials: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls) -> AnnotatorLogin:
        if os.environ.get(LOGIN_ENV, "").strip().lower() in ("", "0", "off", "false", "no"):
            return cls()
        if os.environ.get("SPACE_ID"):
            return cls(LoginMode.HUGGINGFACE)
        raw = os.environ.get(ANNOTATORS_ENV, "")
        file = os.environ.get(ANNOTATORS_FILE_ENV)
        if file:
            try:
                raw += "\n" + Path(file).read_text(encoding="utf-8")
            except OSError as exc:
                log.error("%s=%s cannot be read (%s): nobody can sign in to annotate", ANNOTATORS_FILE_ENV, file, exc)
        creds = _credentials(raw)
        if not creds:
            log.error("%s is on but %s / %s name no annotator: nobody can sign in", LOGIN_ENV, ANNOTATORS_ENV,
                      ANNOTATORS_FILE_ENV)
        return cls(LoginMode.PASSWORD, creds)

    @property
    def required(self) -> bool:
        return self.mode is not LoginMode.OFF

    def sign_in(self, name: str | None, password: str | None) -> str:
        """The annotator name a correct name + password signs in as; a wrong pair is refused."""
        if self.mode is not LoginMode.PASSWORD:
            raise InputError("Signing in with a password is not used by this app.")
        who = (name or "").strip()
        expected = self.credentials.get(who)
        if expected is None or not hmac.compare_digest(expected.encode(), (password or "").encode()):
            raise InputError("Unknown annotator name or wrong password.")
        return who

    def identity(self, typed_name: str | None, signed_in: str | None, oauth_name: str | None = None) -> str:
        """The name a decision is stored under: the typed one when no login is required, else the
        login's; refused when a login is required and nobody is signed in."""
        if self.mode is LoginMode.OFF:
            return clean_annotator(typed_name)
        who = oauth_name if self.mode is LoginMode.HUGGINGFACE else signed_in
        if not who:
            how = "with Hugging Face (the button above)" if self.mode is LoginMode.HUGGINGFACE else \
                "with your annotator name and password (Review tab)"
            raise InputError(f"Annotating needs a login on this server: sign in {how}. Predictions work without one.")
        return clean_annotator(who)
