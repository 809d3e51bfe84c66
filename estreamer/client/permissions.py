"""Refuse to start with credentials other users can read.

The PKCS#12 holds the key that lets its holder pull every event the FMC has, and the
password file unlocks it; either readable by the group or the world hands both to every
local account. So, like ssh with a private key, the client stops and says how to fix it
(`chmod 600 FILE`). The explicit override, `allowReadableKeyFiles: true` in the server
entry, is for setups where a group is deliberately trusted (a service group on a dedicated
host); it is logged at every start."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from estreamer.config import Server
from estreamer.errors import ConfigError

log = logging.getLogger("Settings")

OVERRIDE_KEY = "allowReadableKeyFiles"
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def check_key_files(server: Server, *, config: Path | None = None) -> None:
    """Raise ConfigError when the PKCS#12 or the password file gives group or others any
    access; with the override, log a warning instead. A missing file is not judged here
    (loading it says what is missing)."""
    named = [("PKCS#12", server.pkcs12_filepath)]
    if server.pkcs12_password_file is not None:
        named.append(("password file", server.pkcs12_password_file))
    for what, path in named:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue
        if not mode & _OTHERS:
            continue
        where = f"{server.key_path}.{OVERRIDE_KEY}"
        sentence = (f"the {what} {path} can be read or changed by other users (mode "
                    f"{stat.S_IMODE(mode):04o})")
        if server.allow_readable_key_files:
            log.warning("%s; starting anyway because %s is true", sentence, where)
            continue
        prefix = f"{config}: " if config is not None else ""
        raise ConfigError(f"{prefix}{sentence}: run `chmod 600 {path}`, or set {where} to "
                          f"true to start anyway")
