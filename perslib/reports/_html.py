"""Self-contained HTML: a notebook exported with its math as MathML and no external resource.

nbconvert's stock ``lab`` export leaves every formula as TeX for MathJax and loads MathJax,
require.js and, for diagrams, mermaid from a CDN: offline, or behind a firewall, a reader sees
``$\\hat y$``. :func:`export_html` converts each formula to MathML at export time instead
(``latex2mathml``, post-processed to MathML Core, which Chromium, Firefox and Safari render
natively with no script), embeds the subset of Latin Modern Math that the formulas use (a
browser needs a font with an OpenType MATH table for display-size sums, stretched delimiters
and accents; many Linux machines have none), and drops the CDN scripts from the template.
Figures are embedded PNGs, styles are inlined: the page is complete on its own, with no network.

Every HTML the project writes goes through :func:`export_html` (``run_notebook``, the report
notebook, the course site); :func:`external_resources` lists what a page would still load
from outside itself.
"""

from __future__ import annotations

import html as _html
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement, tostring

__all__ = ["FONT_PATH", "TexError", "export_html", "external_resources", "math_font_css", "tex_to_mathml"]


class TexError(ValueError):
    """A TeX formula that cannot be converted to MathML."""


# --------------------------------------------------------------------------- TeX -> MathML Core

# Chromium implements MathML Core, where ``mathvariant`` only means something as "normal" on
# <mi>: other styles (\mathcal N, \boldsymbol\theta) must be spelled with the Unicode
# Mathematical Alphanumeric Symbols instead. Per variant: first code point of A, of a, of
# 0 (None: no digits), of Greek capital Alpha and small alpha (None: no Greek).
_VARIANTS = {
    "bold": (0x1D400, 0x1D41A, 0x1D7CE, 0x1D6A8, 0x1D6C2),
    "italic": (0x1D434, 0x1D44E, None, 0x1D6E2, 0x1D6FC),
    "bold-italic": (0x1D468, 0x1D482, None, 0x1D71C, 0x1D736),
    "script": (0x1D49C, 0x1D4B6, None, None, None),
    "bold-script": (0x1D4D0, 0x1D4EA, None, None, None),
    "fraktur": (0x1D504, 0x1D51E, None, None, None),
    "double-struck": (0x1D538, 0x1D552, 0x1D7D8, None, None),
    "bold-fraktur": (0x1D56C, 0x1D586, None, None, None),
    "sans-serif": (0x1D5A0, 0x1D5BA, 0x1D7E2, None, None),
    "bold-sans-serif": (0x1D5D4, 0x1D5EE, 0x1D7EC, 0x1D756, 0x1D770),
    "sans-serif-italic": (0x1D608, 0x1D622, None, None, None),
    "sans-serif-bold-italic": (0x1D63C, 0x1D656, None, 0x1D790, 0x1D7AA),
    "monospace": (0x1D670, 0x1D68A, 0x1D7F6, None, None),
}
# Letters that Unicode had before the Mathematical Alphanumeric block: their slots there are empty.
_HOLES = {
    ("italic", "h"): "\u210e",
    **{
        ("script", k): v
        for k, v in zip("BEFHILMRego", "\u212c\u2130\u2131\u210b\u2110\u2112\u2133\u211b\u212f\u210a\u2134")
    },
    **{("fraktur", k): v for k, v in zip("CHIRZ", "\u212d\u210c\u2111\u211c\u2128")},
    **{("double-struck", k): v for k, v in zip("CHNPQRZ", "\u2102\u210d\u2115\u2119\u211a\u211d\u2124")},
}
# TeX's named spaces as latex2mathml writes them; negative ones have no MathML Core equivalent
# (a negative <mspace> width is invalid there) and are dropped.
_NAMED_SPACES = {
    "veryverythinmathspace": "0.056em",
    "verythinmathspace": "0.111em",
    "thinmathspace": "0.167em",
    "mediummathspace": "0.222em",
    "thickmathspace": "0.278em",
    "verythickmathspace": "0.333em",
    "veryverythickmathspace": "0.389em",
}
_FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z\u2006\u2009 ]+")  # \log, \max, \operatorname{softmax}, arg min
_CLOSE_FENCES = {")", "]", "}", "|", "\u2016", "\u27e9"}
_FENCES = {"(", "[", "{", "\u27e8", *_CLOSE_FENCES}
_LIMITS_BELOW = {"min", "max", "sup", "inf", "lim", "lim inf", "lim sup", "arg min", "arg max", "det", "gcd", "Pr"}
_SCRIPTED = {"msub", "msup", "msubsup", "munder", "mover", "munderover"}
# atoms after or before which an operator name takes a thin space (TeX's Ord and Op atoms)
_ORDINARY = {"mi", "mn", "mrow", "msub", "msup", "msubsup", "mover", "munder", "munderover", "mfrac", "msqrt", "mroot"}
# elements whose children are a row (the others have a fixed number of arguments)
_ROWS = {"mrow", "mstyle", "msqrt", "mtd", "mpadded", "mphantom", "menclose", "merror"}


def _styled(char: str, variant: str) -> str | None:
    """``char`` in the Unicode mathematical ``variant``, or None where Unicode has no such letter."""
    if (variant, char) in _HOLES:
        return _HOLES[(variant, char)]
    upper, lower, digit, greek_upper, greek_lower = _VARIANTS[variant]
    code = ord(char)
    if "A" <= char <= "Z":
        return chr(upper + code - ord("A"))
    if "a" <= char <= "z":
        return chr(lower + code - ord("a"))
    if "0" <= char <= "9" and digit is not None:
        return chr(digit + code - ord("0"))
    if 0x391 <= code <= 0x3A9 and greek_upper is not None:
        return chr(greek_upper + code - 0x391)
    if 0x3B1 <= code <= 0x3C9 and greek_lower is not None:
        return chr(greek_lower + code - 0x3B1)
    return None


def _apply_mathvariant(el: Element) -> None:
    variant = el.attrib.get("mathvariant")
    if variant is None or el.tag not in ("mi", "mn") or variant not in _VARIANTS or not el.text:
        return
    styled = [_styled(c, variant) for c in el.text]
    if all(styled):
        el.text = "".join(styled)
        del el.attrib["mathvariant"]


def _is_function_name(el: Element) -> bool:
    """``\\log``, ``\\max``, ``\\operatorname{sg}``: a multi-letter <mi> or <mo> set upright."""
    return el.tag in ("mi", "mo") and bool(el.text) and len(el.text) > 1 and bool(_FUNCTION_NAME.fullmatch(el.text))


def _space_function_names(parent: Element) -> None:
    """Space operator names as TeX does: a thin space between the name and an ordinary atom
    on either side, none before an opening fence (``\\cos(a)``, but ``\\log g``); limits
    under ``\\min``/``\\max`` in display style. latex2mathml writes no spacing, and a
    browser's default for an unknown <mo> is a thick space on both sides."""
    children = list(parent)
    for i, child in enumerate(children):
        core = child[0] if child.tag in _SCRIPTED and len(child) else child
        if not _is_function_name(core):
            continue
        if core.tag == "mo":  # its own operator spacing off: the spaces below are TeX's
            core.attrib.update(lspace="0", rspace="0")
            if core.text.replace("\u2009", " ").replace("\u2006", " ") in _LIMITS_BELOW:
                core.attrib["movablelimits"] = "true"  # under in display style, a subscript inline
                child.tag = {"msub": "munder", "msubsup": "munderover"}.get(child.tag, child.tag)
        before = children[i - 1] if i > 0 else None
        after = children[i + 1] if i + 1 < len(children) else None
        if before is not None and (before.tag in _ORDINARY or (before.tag == "mo" and before.text in _CLOSE_FENCES)):
            parent.insert(list(parent).index(child), Element("mspace", width="0.167em"))
        if after is not None and after.tag in _ORDINARY:
            parent.insert(list(parent).index(child) + 1, Element("mspace", width="0.167em"))


def _mark_unary_signs(parent: Element) -> None:
    """A sign that starts a row or follows an operator, a comma or an opening fence is unary
    (TeX makes that binary atom ordinary): no spaces around it, as in ``(-x)`` and ``a = -b``."""
    previous = None
    for child in parent:
        if child.tag == "mspace":
            continue
        if (
            child.tag == "mo"
            and child.text in ("\u2212", "+", "-", "\u00b1")
            and not (child.attrib.keys() & {"lspace", "rspace", "form"})
            and (previous is None or (previous.tag == "mo" and previous.text not in _CLOSE_FENCES))
        ):
            child.attrib.update(lspace="0", rspace="0")
        previous = child


def _to_core(el: Element, tex: str) -> None:
    """Decode latex2mathml's entity text, reject what it could not convert, and rewrite what
    MathML Core would ignore."""
    for node in el.iter():  # latex2mathml writes character references into the text
        if node.text:
            node.text = _html.unescape(node.text)
        if node.tail:
            node.tail = _html.unescape(node.tail)
    for node in el.iter():
        if node.tag in ("mi", "mo") and node.text:
            if node.text.startswith("\\"):
                raise TexError(f"unsupported TeX command {node.text} in ${tex}$")
            if node.text == "&":
                raise TexError(f"alignment '&' outside a supported environment in ${tex}$")
            if node.tag == "mi" and node.text == "~":  # latex2mathml's \sim
                node.tag, node.text = "mo", "\u223c"
            elif node.tag == "mi" and node.text in (";", ":", "\u27e8", "\u27e9"):  # punctuation, \langle
                node.tag = "mo"
        if node.tag == "mo" and node.text in _FENCES:
            if "stretchy" not in node.attrib and "minsize" not in node.attrib:
                node.attrib["stretchy"] = "false"  # \lVert, \lvert, \langle: fixed size as in TeX
            if node.text in ("|", "\u2016") and "form" not in node.attrib:
                node.attrib.update(lspace="0", rspace="0")  # |x|, \lVert x\rVert: no operator spacing
        if node.tag == "mover" and len(node) == 2 and node[1].tag == "mo":
            accent = node[1]
            if node.attrib.get("accent") == "true" and accent.text == "^":  # \hat (\widehat stretches)
                # U+02C6, the accent glyph: math fonts draw U+005E as the wide ASCII caret
                accent.text, accent.attrib["stretchy"] = "\u02c6", "false"
            elif accent.text == "\u00af" and accent.attrib.get("stretchy") == "true":  # \bar (\overline is U+2015)
                node.attrib["accent"] = "true"  # U+02C9: the macron that math fonts place as an accent
                accent.text, accent.attrib["stretchy"] = "\u02c9", "false"
            elif accent.text == "~" and accent.attrib.get("stretchy") == "false":  # \tilde: the accent, not ASCII ~
                node.attrib["accent"], accent.text = "true", "\u02dc"
        _apply_mathvariant(node)
        if node.tag == "mspace" and node.attrib.get("width", "").endswith("mathspace"):
            width = node.attrib["width"]
            if width in _NAMED_SPACES:
                node.attrib["width"] = _NAMED_SPACES[width]
            else:
                node.attrib["width"] = "0"  # negative: dropped
    for parent in list(el.iter()):
        if parent.tag in _ROWS and len(parent):
            _space_function_names(parent)
            _mark_unary_signs(parent)


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """Convert one TeX formula (without its ``$`` delimiters) to a MathML ``<math>`` element.

    The MathML keeps the TeX as an ``application/x-tex`` annotation (copy and paste, screen
    readers) and uses only what MathML Core renders: Unicode mathematical letters for
    ``\\mathcal``/``\\mathbb``/``\\boldsymbol``, explicit spaces, no named space widths.

    Parameters
    ----------
    tex : str
        The formula, e.g. ``r"\\hat y = f(x)"``.
    display : bool, default=False
        ``True`` for display math (``$$...$$``): a centred block in display style.

    Returns
    -------
    str
        ``<math display="inline|block">...</math>``, serialized for HTML.

    Raises
    ------
    TexError
        The formula does not parse or uses a command the converter does not know; the
        message names the command and the formula.
    """
    from latex2mathml.converter import convert_to_element

    source = tex.strip()
    if not source:
        raise TexError("empty formula")
    try:
        converted = convert_to_element(source, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises its own classes, and IndexError/StopIteration on bad input
        detail = str(exc) or type(exc).__name__
        raise TexError(f"cannot convert ${source}$ to MathML: {detail}") from exc
    _to_core(converted, source)
    math = Element("math", display="block" if display else "inline")
    semantics = SubElement(math, "semantics")
    rows = list(converted)
    body = rows[0] if len(rows) == 1 and rows[0].tag == "mrow" else None
    if body is None:
        body = Element("mrow")
        body.extend(rows)
    semantics.append(body)
    SubElement(semantics, "annotation", encoding="application/x-tex").text = source
    return tostring(math, encoding="unicode", short_empty_elements=True)


# --------------------------------------------------------------------------- the math font

# Latin Modern Math (GUST Font License, see fonts/README.md). A browser needs a font with an
# OpenType MATH table for display-size sums, stretched delimiters and placed accents; each page
# embeds the subset its formulas use, renamed as the license requests of derived works.
FONT_PATH = Path(__file__).with_name("fonts") / "latinmodern-math.otf"
FONT_FAMILY = "perslib Math subset"
_MATH_BLOCK = re.compile(r"<math\b.*?</math>", re.S)
_ANNOTATION = re.compile(r"<annotation\b.*?</annotation>", re.S)
_SINGLE_MI = re.compile(r"<mi>([^<]|&[a-z]+;|&#\w+;)</mi>")
_FONT_CSS_SLOT = "/* perslib: math font */"
# Single-letter <mi> are drawn in mathematical italic (CSS text-transform: math-auto)
_ITALIC_EXTRA = {
    "h": "\u210e",
    "\u0131": "\U0001d6a4",
    "\u0237": "\U0001d6a5",
    "\u03f4": "\U0001d6f3",
    "\u2207": "\U0001d6fb",
    "\u2202": "\U0001d715",
    "\u03f5": "\U0001d716",
    "\u03d1": "\U0001d717",
    "\u03f0": "\U0001d718",
    "\u03d5": "\U0001d719",
    "\u03f1": "\U0001d71a",
    "\u03d6": "\U0001d71b",
}


def _math_characters(page: str) -> set[str]:
    """Every character that the page's formulas draw, with the italic forms a browser uses."""
    chars: set[str] = set()
    for block in _MATH_BLOCK.findall(page):
        block = _ANNOTATION.sub("", block)
        chars |= set(_html.unescape(re.sub(r"<[^>]*>", "", block)))
        for letter in _SINGLE_MI.findall(block):
            letter = _html.unescape(letter)
            italic = _ITALIC_EXTRA.get(letter) or _styled(letter, "italic")
            if italic:
                chars.add(italic)
    return {c for c in chars if not c.isspace() or c == "\u00a0"}


def math_font_css(page: str) -> str:
    """An ``@font-face`` rule with the subset of the math font that ``page``'s formulas use,
    as a ``data:`` URI (WOFF); ``""`` when the page has no formula."""
    import base64
    import io

    from fontTools import subset
    from fontTools.ttLib import TTFont

    chars = _math_characters(page)
    if not chars:
        return ""
    if not FONT_PATH.exists():
        raise FileNotFoundError(f"the math font {FONT_PATH} is missing: reinstall perslib")
    options = subset.Options()
    options.layout_features = ["*"]  # ssty (script-size glyphs), flac, ... as the browser asks
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.glyph_names = False
    options.drop_tables += ["FFTM"]  # FontForge's timestamps: nothing a browser reads
    font = TTFont(FONT_PATH, lazy=False)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in chars])  # the MATH table's variants and parts follow
    subsetter.subset(font)
    for record in list(font["name"].names):  # renamed, as the GUST Font License requests
        if record.nameID in (1, 16):
            record.string = FONT_FAMILY
        elif record.nameID in (3, 4):
            record.string = f"{FONT_FAMILY} (from Latin Modern Math 1.959)"
        elif record.nameID == 6:
            record.string = "perslibMath-Subset"
    if "CFF " in font:
        cff = font["CFF "].cff
        cff.fontNames = ["perslibMath-Subset"]
        top = cff.topDictIndex[0]
        top.FullName = top.FamilyName = FONT_FAMILY
    font.flavor = "woff"
    buffer = io.BytesIO()
    font.save(buffer)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'@font-face {{ font-family: "{FONT_FAMILY}"; '
        f'src: url(data:font/woff;base64,{data}) format("woff"); font-display: block; }}'
    )


# --------------------------------------------------------------------------- external resources

# attributes through which an element loads something (plain <a href> links do not load)
_LOADING_ATTRS = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "source": ("src", "srcset"),
    "track": ("src",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "input": ("src",),
}
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.I)
_NETWORK = re.compile(r"""(?:https?:)?//[^\s'"`<>)]+""", re.I)
_DTD = re.compile(r"<!DOCTYPE[^>]*>", re.I)


def _loads_from_outside(ref: str) -> bool:
    ref = ref.strip()
    return bool(ref) and not ref.startswith(("data:", "#", "about:", "blob:", "javascript:"))


class _ResourceFinder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in _LOADING_ATTRS.get(tag, ()):
            value = attrs.get(name)
            if value is None:
                continue
            refs = (
                [part.split()[0] for part in re.split(r",\s+", value.strip()) if part.strip()]
                if "srcset" in name
                else [value]
            )
            self.found += [f"<{tag} {name}={ref}>" for ref in refs if _loads_from_outside(ref)]
        if "style" in attrs and attrs["style"]:
            self._css(attrs["style"], f"<{tag} style>")
        self._in = tag if tag in ("style", "script") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "style":
            self._css(data, "<style>")
        elif self._in == "script":
            # an inline script that names a network address may load it (import(), fetch, a
            # <script> it writes): conservative, a script that merely mentions one is listed too
            self.found += [f"<script> {url}" for url in _NETWORK.findall(_DTD.sub("", data))]

    def _css(self, css, where):
        for match in _CSS_URL.finditer(css):
            ref = match.group(1) or match.group(2)
            if _loads_from_outside(ref):
                self.found.append(f"{where} url({ref})")


def external_resources(html: str) -> list[str]:
    """What a page would load from outside itself, one description per reference.

    Looks at ``src``/``href``/``srcset``/``data``/``poster`` of elements that load what
    they name (scripts, stylesheets, images, frames, media, fonts through CSS ``url()`` and
    ``@import``), and at network addresses inside inline scripts. ``data:`` URIs, fragments
    and plain ``<a href>`` links are not resources. An empty list: the page is complete on
    its own.
    """
    finder = _ResourceFinder()
    finder.feed(html)
    finder.close()
    return finder.found


# --------------------------------------------------------------------------- the exporter

# The lab template with nothing loaded from outside: no require.js (only widgets and old
# JavaScript outputs use it), no MathJax (the math is MathML already), no mermaid, no
# widget manager from unpkg (a widget's static text/plain fallback shows instead).
_TEMPLATE_NAME = "perslib_offline.html.j2"
_TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}
<style type="text/css">
/* perslib: math as MathML, rendered by the browser with no script, in an embedded font */
/* perslib: math font */
math { font-family: "perslib Math subset", "Latin Modern Math", "STIX Two Math", "Cambria Math", math; font-size: 1.2em; }  /* Latin Modern's x-height is small beside the sans text */
math[display="block"] { margin: 0.8em 0; overflow-x: auto; overflow-y: hidden; padding: 0.1em 0; }
.jp-RenderedLatex math[display="block"] { text-align: left; }
code.perslib-tex-error { color: var(--jp-error-color1, #d32f2f); }
</style>
{% endblock extra_css %}
{% block data_latex scoped %}
<div class="jp-RenderedLatex jp-OutputArea-output {{ extra_class }}" data-mime-type="text/latex">
{{ output.data['text/latex'] | markdown2html }}
</div>
{%- endblock data_latex %}
"""


def _math_html(tex: str, display: bool, strict: bool) -> str:
    try:
        return tex_to_mathml(tex, display=display)
    except TexError as exc:
        if strict:
            raise
        warnings.warn(f"formula left as TeX in the HTML: {exc}", stacklevel=2)
        delim = "$$" if display else "$"
        return f'<code class="perslib-tex-error" title="{_html.escape(str(exc))}">{_html.escape(delim + tex + delim)}</code>'


def _exporter_class():
    """The HTMLExporter subclass, built on first use (nbconvert is an optional dependency)."""
    from jinja2 import DictLoader, pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
    from traitlets import Bool

    class MathMLRenderer(IPythonRenderer):
        """nbconvert's markdown renderer with every formula as MathML. nbconvert's math
        parser takes ``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]`` and
        ``\\begin{env}...\\end{env}`` out before markdown sees them, so underscores, stars
        and backslashes inside a formula never become emphasis or escapes."""

        def __init__(self, *args, strict: bool = False, **kwargs):
            super().__init__(*args, **kwargs)
            self.strict = strict

        def block_math(self, body: str) -> str:
            return _math_html(body, True, self.strict)

        def inline_math(self, body: str) -> str:
            return _math_html(body, False, self.strict)

        def latex_environment(self, name: str, body: str) -> str:
            return _math_html(f"\\begin{{{name}}}{body}\\end{{{name}}}", True, self.strict)

        def multiline_math(self, text: str) -> str:  # mistune 2 only: the delimiters are still on
            body = text.strip()
            for left, right in (("$$", "$$"), ("\\[", "\\]")):
                if body.startswith(left) and body.endswith(right):
                    return _math_html(body[len(left) : -len(right)], True, self.strict)
            return _math_html(body, True, self.strict)

    class OfflineHTMLExporter(HTMLExporter):
        """The ``lab`` HTML export with MathML math, embedded images and no CDN script."""

        strict = Bool(False, help="Raise on a formula that cannot be converted instead of warning.").tag(config=True)

        def __init__(self, **kw):
            kw.setdefault("template_name", "lab")
            kw.setdefault("embed_images", True)
            kw.setdefault("extra_loaders", [DictLoader({_TEMPLATE_NAME: _TEMPLATE})])
            kw.setdefault("template_file", _TEMPLATE_NAME)
            super().__init__(**kw)

        @pass_context  # a jinja context filter, as the method it overrides
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            path = context.get("resources", {}).get("metadata", {}).get("path", "")
            renderer = MathMLRenderer(
                escape=False,
                attachments=cell.get("attachments", {}),
                embed_images=self.embed_images,
                path=path,
                anchor_link_text=self.anchor_link_text,
                exclude_anchor_links=self.exclude_anchor_links,
                strict=self.strict,
                **self.lexer_options,
            )
            return MarkdownWithMath(renderer=renderer).render(source)

    return OfflineHTMLExporter


_EXPORTER = None


def export_html(nb, *, name: str | None = None, path: str | Path | None = None, strict: bool = False) -> str:
    """Render a notebook as one self-contained HTML page: math as MathML, figures embedded,
    styles inlined, no script or stylesheet from the network.

    Parameters
    ----------
    nb : NotebookNode, str or Path
        An (executed) notebook, or the path of an ``.ipynb`` or jupytext ``.py``.
    name : str, optional
        The page title; defaults to the notebook's ``metadata.title``, else its file stem.
    path : str or Path, optional
        The folder that relative image links in markdown cells are read from (they are
        embedded as ``data:`` URIs); defaults to the notebook's folder when ``nb`` is a path.
    strict : bool, default=False
        Raise a :class:`TexError` on a formula that cannot be converted, and a ``ValueError``
        when the page would load anything from outside itself. By default the formula is
        left as TeX in a ``<code>`` element and both are reported as warnings.

    Returns
    -------
    str
        The HTML document.
    """
    global _EXPORTER
    if isinstance(nb, str | Path):
        from perslib.reports._notebooks import read_notebook

        source = Path(nb)
        nb = read_notebook(source)
        name = name or source.stem
        path = path if path is not None else source.resolve().parent
    if _EXPORTER is None:
        _EXPORTER = _exporter_class()
    resources = {"metadata": {"name": name or "Notebook", "path": str(path) if path is not None else ""}}
    body, _ = _EXPORTER(strict=strict).from_notebook_node(nb, resources=resources)
    if _FONT_CSS_SLOT in body:
        try:
            body = body.replace(_FONT_CSS_SLOT, math_font_css(body), 1)
        except (ImportError, OSError) as exc:  # no fontTools, no font file: the reader's math font
            if strict:
                raise
            warnings.warn(f"math font not embedded ({exc}); formulas use the reader's math font", stacklevel=2)
    outside = external_resources(body)
    if outside:
        message = f"the HTML would load {len(outside)} resource(s) from outside itself: {'; '.join(outside[:5])}"
        if strict:
            raise ValueError(message)
        warnings.warn(message, stacklevel=2)
    return body
