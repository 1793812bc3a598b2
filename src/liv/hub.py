"""Downloads of named pretrained models, offline-first.

Two sources: files of a Hugging Face Hub repository, through ``huggingface_hub`` (its cache under
``HF_HOME``/``HF_HUB_CACHE``, revisions, resumed downloads, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and the token
of ``hf auth login``), and a file at a plain URL whose SHA-256 is published (OpenAI's CLIP weights),
downloaded into liv's own cache (``LIV_CACHE``, else ``$XDG_CACHE_HOME/liv``, else ``~/.cache/liv``).

A URL download is written to ``NAME.part``, resumed with an HTTP Range request when the connection
breaks, checked against its SHA-256 and only then renamed to ``NAME``: a file under its final name is
always complete and verified. A checksum mismatch deletes the download. Environment settings are read
when a download is asked for, not at import, so a program (or a test) may set them late.

Every failure is a :class:`liv.CheckpointError` of one line naming the model, what to download from
where, and that a local path works too.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from liv.checkpoints.errors import CheckpointError

_TRUE = {"1", "true", "yes", "on"}
PROGRESS_MIN_BYTES = 8 << 20
"""Downloads at least this large show a progress bar (on a terminal)."""
_CHUNK = 1 << 20


def offline() -> bool:
    """True when downloads are off: ``HF_HUB_OFFLINE`` (huggingface_hub's switch) or ``LIV_OFFLINE`` is set."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "LIV_OFFLINE"))


def liv_cache_dir() -> Path:
    """Where liv keeps files downloaded from plain URLs: ``LIV_CACHE``, else ``$XDG_CACHE_HOME/liv``, else
    ``~/.cache/liv``."""
    if os.environ.get("LIV_CACHE"):
        return Path(os.environ["LIV_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "liv"


def _hub_cache_dir() -> str | None:
    # huggingface_hub reads these once, at import; read them here at call time so that late settings count.
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None  # huggingface_hub's default


def _hub_endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or None


def hub_page(repo: str) -> str:
    """The web address of a Hub repository (on ``HF_ENDPOINT`` when set)."""
    return f"{_hub_endpoint() or 'https://huggingface.co'}/{repo}"


class NotCached(CheckpointError):
    """A file that is neither in the cache nor downloadable now (offline, or the server cannot be reached)."""


class NoSuchFile(CheckpointError):
    """A file that the repository does not have."""


def unavailable() -> str:
    """Why a file that is not cached cannot be had now, as a clause: offline or the Hub unreachable."""
    if offline():
        return "downloads are off (HF_HUB_OFFLINE)"
    return f"{_hub_endpoint() or 'https://huggingface.co'} cannot be reached"


# ------------------------------------------------------------------------------------- Hugging Face Hub
@contextlib.contextmanager
def _quiet_hub() -> Iterator[None]:
    # huggingface_hub logs each retry on its own lines; liv's error says what failed, in one line.
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hub_logger.setLevel(level)


def hub_download(name: str, repo: str, filename: str, revision: str | None = None,
                 subfolder: str | None = None, local_only: bool = False) -> Path:
    """The local path of ``filename`` from Hub repository ``repo`` (downloaded unless cached) -> Path.

    ``local_only``: look in the cache only (as when offline), e.g. after the Hub was found unreachable.

    Raises CheckpointError naming ``name`` for a repository, revision or file that does not exist, a
    private repository without a token, and a file neither cached nor downloadable (offline, no
    connection: :class:`NotCached`; a file the repository lacks: :class:`NoSuchFile`).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    where = f"{repo}{'/' + subfolder if subfolder else ''}/{filename}" + (f" at revision {revision}" if revision else "")
    try:
        with _quiet_hub():
            path = hf_hub_download(repo, filename, subfolder=subfolder or None, revision=revision,
                                   cache_dir=_hub_cache_dir(), endpoint=_hub_endpoint(),
                                   local_files_only=local_only or offline(), library_name="liv")
    except LocalEntryNotFoundError:
        raise NotCached(name, f"{where} is not in the Hugging Face cache and {unavailable()}: download it from "
                              f"{hub_page(repo)} when online (`hf download {repo} {filename}`), or give the path "
                              "of a local copy instead") from None
    except GatedRepoError:
        raise CheckpointError(name, f"{hub_page(repo)} needs you to accept its terms and log in "
                                    "(`hf auth login`)") from None
    except RepositoryNotFoundError:
        raise CheckpointError(name, f"no Hugging Face repository {repo} (or it is private: `hf auth login` "
                                    "gives the token that can read it)") from None
    except RevisionNotFoundError:
        raise CheckpointError(name, f"{hub_page(repo)} has no revision {revision}") from None
    except EntryNotFoundError:
        raise NoSuchFile(name, f"{hub_page(repo)} has no file {where}") from None
    except HfHubHTTPError as e:
        raise CheckpointError(name, f"cannot download {where} ({_first_line(e)})") from None
    return Path(path)


def hub_cached(repo: str, filename: str, revision: str | None = None, subfolder: str | None = None) -> Path | None:
    """The cached copy of a Hub file, or None; never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, f"{subfolder}/{filename}" if subfolder else filename,
                                   cache_dir=_hub_cache_dir(), revision=revision)
    return Path(found) if isinstance(found, str) else None


# ------------------------------------------------------------------------------------- plain URLs
def url_cache_path(sha256: str, filename: str) -> Path:
    """Where a verified download of ``filename`` with this SHA-256 is kept."""
    return liv_cache_dir() / "sha256" / sha256 / filename


def url_download(name: str, url: str, sha256: str, attempts: int = 4, timeout: float = 60.0) -> Path:
    """A verified local copy of ``url`` -> Path, downloaded unless cached; see the module docstring.

    ``attempts``: how many times a broken connection is resumed before giving up (the part downloaded so
    far stays for the next call to resume). Raises CheckpointError naming ``name``: offline or unreachable
    with nothing cached, an HTTP error, a download cut off ``attempts`` times, a SHA-256 mismatch (the
    download is deleted).
    """
    from filelock import FileLock

    filename = url.rsplit("/", 1)[-1]
    dest = url_cache_path(sha256, filename)
    if dest.is_file():
        return dest
    hand = f"download {url} (SHA-256 {sha256}) by hand and give the path of that local copy instead, or put it at {dest}"
    if offline():
        raise CheckpointError(name, f"{filename} is not in liv's cache ({dest.parent}) and downloads are off "
                                    f"(HF_HUB_OFFLINE/LIV_OFFLINE): go online once, or {hand}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(name, f"cannot create liv's cache folder {dest.parent} ({e.strerror or e}); set "
                                    "LIV_CACHE to a writable folder") from None
    part = dest.with_name(dest.name + ".part")
    with FileLock(str(dest.with_name(dest.name + ".lock"))):  # another process may be fetching the same file
        if dest.is_file():
            return dest
        problem = None
        for _ in range(attempts):
            problem, retry = _fetch(url, part, timeout)
            if problem is None:
                break
            if not retry:
                raise CheckpointError(name, f"cannot download {url} ({problem}): {hand}")
        if problem is not None:
            have = part.stat().st_size if part.exists() else 0
            raise CheckpointError(name, f"the download of {url} broke off {attempts} times ({problem}); {have} bytes "
                                        f"are kept in {part} and the next try resumes from there, or {hand}")
        digest = _sha256(part)
        if digest != sha256:
            part.unlink()
            raise CheckpointError(name, f"the download of {url} has SHA-256 {digest}, not the published {sha256}; "
                                        "it was deleted (a damaged or replaced file): try again, or " + hand)
        os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, timeout: float) -> tuple[str | None, bool]:
    """Download ``url`` into ``part``, continuing a partial file with a Range request -> (None when the body
    arrived whole, else what went wrong; whether another try may help)."""
    from tqdm.auto import tqdm

    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is as long as the file or longer: start again
            part.unlink()
            return f"the server would not resume after {have} bytes", True
        return f"HTTP {e.code} {e.reason}", False
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return (f"connection failed after {have} bytes: {reason}", True) if have else (f"{reason}", False)
    with response:
        start = _range_start(response.headers.get("Content-Range")) if response.status == 206 else 0
        if start != have:  # the server ignored the Range (200) or answered another one: start from 0
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        with open(part, "r+b" if have else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], file=sys.stderr,
                disable=None if (total or 0) >= PROGRESS_MIN_BYTES else True) as bar:
            f.seek(have)
            f.truncate()
            try:
                while chunk := response.read(_CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            except (http.client.HTTPException, OSError) as e:
                return f"connection lost after {f.tell()} bytes: {_first_line(e) or type(e).__name__}", True
            got = f.tell()
    if total is not None and got < total:
        return f"connection closed after {got} of {total} bytes", True
    return None, False


def _range_start(content_range: str | None) -> int | None:
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (content_range or "").strip())
    return int(match.group(1)) if match else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _first_line(e: BaseException) -> str:
    return next((line.strip() for line in str(e).splitlines() if line.strip()), "")


__all__ = ["NoSuchFile", "NotCached", "PROGRESS_MIN_BYTES", "hub_cached", "hub_download", "hub_page", "liv_cache_dir",
           "offline", "unavailable", "url_cache_path", "url_download"]
