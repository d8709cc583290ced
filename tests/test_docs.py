"""The docs cannot drift from the code: generated pages are current, every setting and
DLQ reason is documented, links resolve, and the README stays a short front page."""

import importlib
import re
from pathlib import Path

from stream_app import docs_gen
from stream_app.events import REASONS
from stream_app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]

# Pages written in parallel on other branches: a link to one is allowed while it is absent.

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SESSION = re.compile(r"\bsessions? \d+", re.I)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
WORK_LOG = re.compile(
    r"\bsessions? \d+|\bissues? #\d+|(?<![\w/&#])#\d+\b|\btried\b.{0,40}\bnot kept\b", re.I
)


def prose(text: str) -> str:
    """Markdown without fenced blocks and code spans."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchors(text: str) -> set[str]:
    """GitHub-style anchors of a page's headings."""
    out = set()
    for title in HEADING.findall(FENCE.sub("", text)):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def test_generated_pages_are_current() -> None:
    stale = [str(p.relative_to(ROOT)) for p in docs_gen.stale_pages()]
    assert not stale, f"{stale}: run python -m stream_app.docs_gen"


def test_every_setting_has_a_description() -> None:
    assert [n for n, f in Settings.model_fields.items() if not (f.description or "").strip()] == []


def test_every_setting_is_documented() -> None:
    page = docs_gen.CONFIGURATION.read_text()
    missing = [n for n in Settings.model_fields if f"`{docs_gen.env_name(n)}`" not in page]
    assert not missing
    assert docs_gen.env_name("top_k") == "STREAMREC_TOP_K"


def test_every_dlq_reason_is_documented() -> None:
    page = docs_gen.DLQ_REASONS.read_text()
    assert all(f"`{r}`" in page for r in REASONS)


def test_docs_gen_check_detects_a_stale_page(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    page = tmp_path / "configuration.md"
    page.write_text("old\n")
    monkeypatch.setattr(docs_gen, "PAGES", {page: docs_gen.configuration_markdown})
    assert docs_gen.main(["--check"]) == 1
    assert docs_gen.main([]) == 0
    assert docs_gen.main(["--check"]) == 0


def test_relative_links_resolve() -> None:
    broken = []
    for page in PAGES:
        text = page.read_text()
        for target in LINK.findall(prose(text)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif (
                anchor
                and dest.exists()
                and dest.suffix == ".md"
                and anchor not in anchors(dest.read_text())
            ):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_docs_link_no_module_files() -> None:
    """Modules are named (`models.rerank.slots`), not linked: files move, names are stable."""
    linked = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in PAGES
        for target in LINK.findall(prose(page.read_text()))
        if target.split("#")[0].endswith(".py")
    ]
    assert linked == []


def test_readme_is_a_short_front_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert "make demo" in text and "make test" in text
    assert WORK_LOG.findall(prose(text)) == []


def test_work_log_pattern() -> None:
    assert WORK_LOG.search("measured in session 11")
    assert WORK_LOG.search("see issue #7")
    assert WORK_LOG.search("as #7 asked")
    assert WORK_LOG.search("tried a cache, not kept")
    assert not WORK_LOG.search("see [guarantees](docs/guarantees.md#chaos-harness)")
    assert not WORK_LOG.search("p99 of 50 ms, 2 sessions of users")


def test_docs_pages_have_no_work_log_phrases() -> None:
    """History belongs in the CHANGELOG; the reference pages read as reference (they may
    cite upstream issues, e.g. faust-streaming #596)."""
    found = {
        str(p.relative_to(ROOT)): SESSION.findall(prose(p.read_text()))
        for p in PAGES
        if p.name != "CHANGELOG.md"
    }
    assert {k: v for k, v in found.items() if v} == {}


def test_named_paths_exist() -> None:
    """Paths named in code spans (`scripts/chaos.py`, `tests/integration/`) exist; code
    modules are named by their dotted name, never by a file path that a move would break."""
    span_path = re.compile(r"`((?:tests|scripts|docker|docs|stream_app|models)/[\w./-]*)`")
    missing, file_paths = [], []
    for page in PAGES:
        for path in span_path.findall(FENCE.sub("", page.read_text())):
            where = f"{page.relative_to(ROOT)}: {path}"
            if path.startswith(("stream_app/", "models/")) and path.endswith(".py"):
                file_paths.append(where)
            elif not (ROOT / path).exists():
                missing.append(where)
    assert missing == [] and file_paths == []


def _names_code(dotted: str) -> bool:
    """A module or package, or a name defined in one (`stream_app.app.create_app`)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:cut])
        if base.with_suffix(".py").exists() or (base / "__init__.py").exists():
            obj: object = importlib.import_module(".".join(parts[:cut]))
            for attr in parts[cut:]:
                if not hasattr(obj, attr):
                    return False
                obj = getattr(obj, attr)
            return True
    return False


def test_named_modules_exist() -> None:
    """Every module named in the docs (`models.rerank.slots`) exists, and so does every
    name in one (`stream_app.app.create_app`)."""
    name = re.compile(r"`((?:stream_app|models)(?:\.\w+)+)`")
    missing = []
    for page in PAGES:
        for dotted in name.findall(FENCE.sub("", page.read_text())):
            if not _names_code(dotted):
                missing.append(f"{page.relative_to(ROOT)}: {dotted}")
    assert missing == []
