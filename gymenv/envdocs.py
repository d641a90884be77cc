"""Gymnasium's env docstrings read one way for every door: their sections, and excerpts that end on a whole sentence."""

import re

# Headings gymnasium's env docs use. A markdown heading of any name ends a section; these names are
# also recognised bare ("Action Space" on a line of its own), the form descriptions are handed out in.
SECTION_NAMES = ("description", "action space", "observation space", "rewards", "starting state", "episode end",
                 "episode termination", "arguments", "version history", "information", "notes", "references")
_HEADING = re.compile(r"^[ \t]*(?:#+[ \t]*(?P<marked>\S.*?)|(?P<bare>" + "|".join(SECTION_NAMES) + r"))[ \t]*:?[ \t]*$",
                      re.IGNORECASE | re.MULTILINE)

# A cut leaves whole text after a sentence's closing mark (and any closing quote, bracket or emphasis) or
# before a blank line, a list item or a table row; tables and lists often carry no full stops.
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)[.!?][)\]\"'`*]*(?=\s|$)", re.IGNORECASE)
_BLOCK_START = re.compile(r"\n(?=[ \t]*(?:\n|[-*|]|\d+\.\s))")


def sections(text: str) -> list[tuple[str, str]]:
    """(heading as written, body) for each section of env docs, in order; text before the first heading is dropped."""
    found = list(_HEADING.finditer(text))
    return [(m.group("marked") or m.group("bare"),
             text[m.end():found[i + 1].start() if i + 1 < len(found) else len(text)].strip())
            for i, m in enumerate(found)]


def section(text: str, name: str) -> str:
    """The body of the section called `name` (lower case: "action space"), or "" when the docs have none."""
    return next((body for heading, body in sections(text) if heading.lower() == name), "")


def excerpt(text: str, limit: int) -> str:
    """`text` with its lines unindented, cut to at most `limit` characters at the last whole sentence,
    list item or paragraph; "" when not even the first fits."""
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text.strip())
    if len(text) <= limit:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if not _opens_numbered_item(text, m.end())]
    ends += [m.start() for m in _BLOCK_START.finditer(text)]
    # Not after a line that opens a list ("Truncation (when ...):"): its items are what the cut left out.
    return text[:max((end for end in ends if end <= limit and not text[:end].rstrip().endswith(":")),
                     default=0)].rstrip()


def _opens_numbered_item(text: str, end: int) -> bool:
    """The "1." of "1. Termination: ..." is no sentence's end."""
    return text[text.rfind("\n", 0, end) + 1:end].rstrip(".").isdigit()
