"""Text normalisation, link and arXiv id extraction, and the keys that deduplicate papers.

Everything here runs once or twice per paper on every ingest, so the common case is settled by one
C-speed check (str.isprintable, str.find) and the regexes only run when that check finds work.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from service.ingest.records import PaperRecord

# Control characters (C0 but tab/newline/CR, DEL, C1) and U+FFFD: signs of binary data or a bad decode.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
# Invisible characters that only get in the way of comparing and searching.
_INVISIBLE = re.compile(r"[\u00ad\u200b\u200c\u200e\u200f\u2060\ufeff]")
_NON_WORD = re.compile(r"[\W_]+")
_DOUBLE_SPACE = re.compile("  ")  # re's literal search beats `"  " in text` on prose
_ODD_CHAR = re.compile(r"[^\w\s.,:;\-'\"()?!/&%+\u2010-\u2015\u2018-\u201f]")

_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7}"
_ARXIV_ID = re.compile(rf"^(?:arxiv:)?({_NEW_ID}|{_OLD_ID})(v\d+)?$", re.IGNORECASE)
_ARXIV_URL_ID = re.compile(
    rf"arxiv\.org/(?:abs|pdf|html)/({_NEW_ID}|{_OLD_ID})(?:v\d+)?(?:\.pdf)?", re.IGNORECASE
)
# URLs end at whitespace, quotes, angle brackets or braces (dumps glue LaTeX `\url{...}` remnants on).
_URL = re.compile(r"https?://[^\s<>\"'{}|\\^`\[\]]+", re.IGNORECASE)
_ARXIV_REF = re.compile(rf"\barxiv:\s?({_NEW_ID})(?:v\d+)?", re.IGNORECASE)
_GITHUB_REPO = re.compile(r"^https?://(?:www\.)?github\.com/([\w.\-]+)/([\w.\-]+)", re.IGNORECASE)
_GITHUB_NOT_REPOS = {"orgs", "topics", "features", "about", "sponsors", "marketplace", "settings"}

KEY_MAX = 300  # papers.key and papers.title_key are String(300)
# In ASCII text only C0 controls and DEL are not printable.
_ASCII_CONTROLS = bytes(range(32)) + b"\x7f"


def is_printable(text: str) -> bool:
    """str.isprintable(), about three times faster on ASCII text (most abstracts).

    str.isprintable looks every character up in the Unicode database; for ASCII, deleting the 33
    control bytes with bytes.translate and comparing lengths gives the same answer.
    """
    if len(text) > 64 and text.isascii():
        return len(text.encode("ascii").translate(None, _ASCII_CONTROLS)) == len(text)
    return text.isprintable()


def clean_text(text: str) -> str:
    """NFC, invisible and control characters dropped, whitespace collapsed; wording kept."""
    if is_printable(text):
        # The common case, checked in one C-speed pass: no tabs, newlines, NBSP, controls or
        # invisible characters, so only runs of spaces and the ends can need work.
        if "  " in text or text[:1] == " " or text[-1:] == " ":
            text = " ".join(text.split())
        if text.isascii() or unicodedata.is_normalized("NFC", text):
            return text
        return unicodedata.normalize("NFC", text)
    if not text.isascii():
        text = _INVISIBLE.sub("", unicodedata.normalize("NFC", text))
    text = _CONTROL.sub("", text)
    return " ".join(text.split())


def garbage_reason(text: str) -> str | None:
    """Why `text` looks like binary data rather than prose, or None when it looks fine."""
    if is_printable(text):
        controls = 0
    elif "\x00" in text:
        return "binary data (NUL bytes)"
    else:
        controls = len(_CONTROL.findall(text))
        if controls * 20 > len(text) or controls > 8:
            return f"binary data ({controls} control characters)"
    return _stray_symbols(text)


def _stray_symbols(text: str) -> str | None:
    if text.isascii() or len(text) > 200:
        return None
    # Random bytes read as Windows-1252 are full of symbols (¤ § ¬ ± ...); prose is not. (A longer line
    # of random bytes always holds control characters, which garbage_reason catches first.)
    odd = len(_ODD_CHAR.findall(text))
    if odd >= 3 and odd * 7 > len(text):
        return f"binary data ({odd} of {len(text)} characters are stray symbols)"
    return None


def checked_text(text: str) -> tuple[str | None, str | None]:
    """(clean_text(text), None), or (None, garbage_reason) -- with one scan in the common case."""
    if len(text) > 64 and text.isascii():
        # Long ASCII text (most abstracts): what the branch below does for it, with fewer steps.
        if len(text.encode("ascii").translate(None, _ASCII_CONTROLS)) == len(text):
            if _DOUBLE_SPACE.search(text) or text[0] == " " or text[-1] == " ":
                text = " ".join(text.split())
            return text, None
    elif is_printable(text):
        if len(text) <= 200 and not text.isascii() and (reason := _stray_symbols(text)):
            return None, reason
        if "  " in text or text[:1] == " " or text[-1:] == " ":
            text = " ".join(text.split())
        if text.isascii() or unicodedata.is_normalized("NFC", text):
            return text, None
        return unicodedata.normalize("NFC", text), None
    reason = garbage_reason(text)
    return (None, reason) if reason else (clean_text(text), None)


def looks_like_title(text: str) -> bool:
    """Titles are short phrases that do not end in a full stop; abstracts are sentences."""
    return len(text) <= 300 and not text.endswith(".") and text.count(". ") <= 1


def normalize_arxiv_id(value: str) -> str | None:
    """'arXiv:2401.01234v2', 'https://arxiv.org/abs/2401.01234v2' -> '2401.01234'; None if no id."""
    value = value.strip()
    match = _ARXIV_ID.match(value)
    if match:
        found = match.group(1)
    else:
        url_match = _ARXIV_URL_ID.search(value)
        if not url_match:
            return None
        found = url_match.group(1)
    return found if "/" not in found else found.lower()


def arxiv_abs_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{arxiv_id}"


def arxiv_pdf_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/pdf/{arxiv_id}"


def arxiv_id_among(*values: object) -> str | None:
    """The first arXiv id found among field values that may hold one (an `id` of "arXiv:0704.0001",
    an abs/pdf URL, an old-style "hep-th/9901001"); values that are not arXiv ids are passed over."""
    for value in values:
        if isinstance(value, str) and value and len(value) < 300:
            found = normalize_arxiv_id(value)
            if found:
                return found
    return None


# Affiliation markers after a name: "(1)", "(1, 2)", "(1 and 2)", "((1) MIT, (2) Caltech)", "(MIT)",
# "1,2", "*", "†", superscripts.
_AFFILIATION = re.compile(
    r"(?:\s*\(\(.*\)|\s*\([^()]*\)|\s*[\d,*\u2020\u2021\u00a7\u00b9\u00b2\u00b3\u2070-\u2079]+)+$"
)
_MARKER_HINT = re.compile(r"[(\d*\u2020\u2021\u00a7\u00b9\u00b2\u00b3\u2070-\u2079]")


def clean_author_names(names: list[str]) -> list[str]:
    """Names without the affiliation markers dumps leave on them; names that were only markers go."""
    if not names or not _MARKER_HINT.search("".join(names)):
        return names  # the common case: one scan of the joined names
    cleaned = [_AFFILIATION.sub("", name).strip(" ,;") for name in names]
    return [name for name in cleaned if name]


def _trim_url(url: str) -> str:
    url = url.rstrip(".,;:!?'\"")
    # A closing bracket belongs to the URL only if the URL opened one.
    while url.endswith(")") and url.count("(") < url.count(")"):
        url = url[:-1].rstrip(".,;:!?")
    return url


def github_repo_url(url: str) -> str | None:
    """https://github.com/owner/repo for any link into a repository, else None."""
    match = _GITHUB_REPO.match(url)
    if not match or match.group(1).lower() in _GITHUB_NOT_REPOS:
        return None
    repo = match.group(2)
    repo = repo.removesuffix(".git")
    return f"https://github.com/{match.group(1)}/{repo}" if repo else None


def extract_links(text: str) -> list[str]:
    """arXiv and GitHub links in `text`, in order, without duplicates.

    `arXiv:2401.01234` references become abs URLs. Other links (project pages, datasets) are left out
    on purpose: the issue asks for arXiv and code links only.
    """
    if ":" not in text:  # one memchr: every link below holds a colon ("://" or "arXiv:")
        return []
    links: list[str] = []
    start = text.find("://")
    while start != -1:
        # Scanning with str.find and matching only where a URL can start is far faster than findall.
        begin = text.rfind("http", max(0, start - 5), start)
        match = _URL.match(text, begin) if begin != -1 else None
        if match is None:
            start = text.find("://", start + 3)
            continue
        url = _trim_url(match.group())
        low = url.lower()
        wanted = ("github.com/" in low and github_repo_url(url)) or "arxiv.org/" in low
        if wanted and url not in links:
            links.append(url)
        start = text.find("://", match.end())
    if "iv:" in text or "IV:" in text:
        for found in _ARXIV_REF.findall(text):
            url = arxiv_abs_url(found)
            if url not in links:
                links.append(url)
    return links


def first_code_url(links: list[str]) -> str | None:
    for link in links:
        repo = github_repo_url(link)
        if repo:
            return repo
    return None


def _bounded(prefix: str, body: str) -> str:
    """prefix+body, or a truncated body plus a hash when it would not fit in KEY_MAX."""
    key = prefix + body
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.sha1(body.encode("utf-8")).hexdigest()[:16]
    return f"{prefix}{body[: KEY_MAX - len(prefix) - 17]}#{digest}"


def title_key(title: str) -> str:
    """Case, accents-as-composed, punctuation and spacing do not make two titles different papers."""
    norm = unicodedata.normalize("NFKC", title).casefold()
    norm = _NON_WORD.sub(" ", norm).strip()
    return _bounded("", norm)


def paper_key(record: PaperRecord) -> str:
    """The stored identity of a new paper: its arXiv id when known, else its normalised title."""
    if record.arxiv_id:
        return f"arxiv:{record.arxiv_id}"
    return _bounded("title:", title_key(record.title))


def finish_record(record: PaperRecord, extra_text: str = "") -> PaperRecord:
    """Fill links, code URL and paper URL from what the record already holds."""
    text = f"{record.abstract} {extra_text}" if extra_text else record.abstract
    links = record.links or extract_links(text)
    if not record.arxiv_id and record.url and "arxiv.org/" in record.url:
        record.arxiv_id = normalize_arxiv_id(record.url)
    if record.authors:
        record.authors = clean_author_names(record.authors)
    if record.arxiv_id and not record.url:
        record.url = arxiv_abs_url(record.arxiv_id)
    record.links = links
    if record.code_url is None:
        record.code_url = first_code_url(links)
    return record
