"""Self-contained HTML: math as MathML that browsers render with no script, and nothing loaded
from the network (issue 16)."""

import base64
import io
import re
from pathlib import Path
from xml.etree import ElementTree

import jupytext
import nbformat
import pytest
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

from perslib.reports import (
    TexError,
    export_html,
    external_resources,
    find_notebooks,
    main,
    tex_to_mathml,
)
from perslib.reports._html import FONT_FAMILY, FONT_PATH

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = find_notebooks(ROOT / "notebooks")
IDS = [p.stem for p in NOTEBOOKS]
ANNOTATION = re.compile(r'<annotation encoding="application/x-tex">(.*?)</annotation>', re.S)


class _FormulaCollector(IPythonRenderer):
    """nbconvert's own markdown math parser, collecting every formula it hands to a renderer."""

    def __init__(self):
        super().__init__(escape=False)
        self.formulas: list[tuple[str, bool]] = []

    def block_math(self, body):
        self.formulas.append((body, True))
        return ""

    def inline_math(self, body):
        self.formulas.append((body, False))
        return ""

    def latex_environment(self, name, body):
        self.formulas.append((f"\\begin{{{name}}}{body}\\end{{{name}}}", True))
        return ""


def formulas_of(nb) -> list[tuple[str, bool]]:
    """Every TeX formula of a notebook's markdown cells, as the HTML export will see them."""
    collector = _FormulaCollector()
    parser = MarkdownWithMath(renderer=collector)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            parser.render(cell.source)
    return collector.formulas


def _mathml(tex, display=False):
    out = tex_to_mathml(tex, display=display)
    return out, ElementTree.fromstring(out)  # well-formed XML, so well-formed in HTML too


def _notebook(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


# --------------------------------------------------------------------------- every formula converts


@pytest.mark.parametrize("py", NOTEBOOKS, ids=IDS)
def test_every_formula_of_the_notebook_converts_to_mathml(py):
    formulas = formulas_of(jupytext.read(py))
    assert len(formulas) >= 10, f"{py.name}: only {len(formulas)} formulas found"
    failures = []
    for tex, display in formulas:
        try:
            out, tree = _mathml(tex, display)
        except TexError as exc:
            failures.append(str(exc))
            continue
        rendered = tree.find("semantics")[0]
        texts = [el.text for el in rendered.iter() if el.text]
        # nothing of the TeX source may leak into what is drawn: no command, no brace
        assert not any("\\" in t for t in texts), (tex, out)
        assert tree.attrib["display"] == ("block" if display else "inline")
        assert tree.find("semantics/annotation").text == tex.strip()
    assert not failures, f"{py.name}: {len(failures)} formula(s) cannot be converted:\n" + "\n".join(failures)


def test_all_notebooks_together_use_the_commands_the_issue_names():
    tex = " ".join(t for py in NOTEBOOKS for t, _ in formulas_of(jupytext.read(py)))
    for command in (r"\operatorname", r"\mathrm", r"\text", r"\hat", r"\tfrac", r"\textstyle", r"\Big(", r"\lVert"):
        assert command in tex, f"no notebook uses {command} any more: the conversion test covers less"


# --------------------------------------------------------------------------- the conversion itself


def _only(tree, tag):
    found = tree.findall(f".//{tag}")
    assert len(found) == 1, [ElementTree.tostring(f, encoding="unicode") for f in found]
    return found[0]


def test_hat_is_a_fixed_size_accent():
    _, tree = _mathml(r"\hat y_M")
    mover = _only(tree, "mover")
    assert mover.attrib["accent"] == "true"
    assert mover[1].text == "\u02c6" and mover[1].attrib["stretchy"] == "false"  # not the wide ASCII caret


def test_calligraphic_and_blackboard_letters_are_unicode_math_letters():
    # MathML Core ignores mathvariant="script": the letter itself must be the script N
    for tex in (r"\mathcal N(0, 1)", r"\mathcal{N}(0, 1)"):
        out, tree = _mathml(tex)
        assert "\U0001d4a9" in out and "mathvariant" not in out
    assert "\u211d" in _mathml(r"x \in \mathbb{R}^q")[0]  # the letter with its own code point


def test_sim_is_a_relation_not_an_ascii_tilde():
    _, tree = _mathml(r"u \sim \mathcal N(0, \tau^2)")
    assert any(el.tag == "mo" and el.text == "\u223c" for el in tree.iter())
    assert not any(el.text == "~" for el in tree.iter())


def test_tfrac_and_textstyle_set_text_style():
    _, tree = _mathml(r"\tfrac1n \textstyle\sum_k z_k", display=True)
    styles = tree.findall(".//mstyle")
    assert len(styles) == 2 and all(s.attrib["displaystyle"] == "false" for s in styles)
    assert styles[0].find("mfrac") is not None


def test_norms_and_absolute_values_do_not_stretch_or_space():
    _, tree = _mathml(r"\sum_i \lVert \hat\theta_i - \theta_i\rVert^2 + |u_{ik} - u_{jk}|", display=True)
    bars = [el for el in tree.iter("mo") if el.text in ("\u2016", "|")]
    assert len(bars) == 4
    assert all(b.attrib["stretchy"] == "false" and b.attrib["lspace"] == b.attrib["rspace"] == "0" for b in bars)


def test_big_delimiters_keep_their_size():
    _, tree = _mathml(r"\operatorname{softmax}\Big(\tfrac{1}{n_c}x\Big)")
    sizes = {el.attrib.get("minsize") for el in tree.iter("mo") if el.text in ("(", ")")}
    assert sizes == {"1.623em"}


def test_operator_names_are_upright_and_spaced_as_in_tex():
    _, tree = _mathml(r"\operatorname{logit} \hat y = \log g(x) + \cos(a)")
    names = {el.text: el for el in tree.iter() if el.text in ("logit", "log", "cos")}
    assert set(names) == {"logit", "log", "cos"}
    row = tree.find("semantics/mrow")
    tags = [el.tag for el in row]
    texts = [el.text for el in row]
    # a thin space after logit (before the accented y) and after log (before g), none before "("
    assert tags[texts.index("logit") + 1] == "mspace" and tags[texts.index("log") + 1] == "mspace"
    assert texts[texts.index("cos") + 1] == "("


def test_limits_go_under_min_in_display_style():
    _, tree = _mathml(r"\min_{z, Q}\ \frac1n", display=True)
    under = _only(tree, "munder")
    assert under[0].text == "min" and under[0].attrib["movablelimits"] == "true"


def test_unary_minus_has_no_binary_spacing():
    _, tree = _mathml(r"\big(-\cos a\big) = -b - c")
    signs = [el for el in tree.iter("mo") if el.text == "\u2212"]
    assert [s.attrib.get("lspace") for s in signs] == ["0", "0", None]  # the last one is binary


def test_text_with_markup_characters_is_escaped():
    out, tree = _mathml(r"\text{a<b & c} + x")
    assert "<mtext>a&lt;b\u00a0&amp;\u00a0c</mtext>" in out  # spaces in \text kept as no-break spaces
    assert tree.find(".//mtext").text == "a<b\u00a0&\u00a0c"


@pytest.mark.parametrize(
    ("tex", "needle"),
    [
        (r"\foo x", r"unsupported TeX command \foo"),
        (r"x_", "cannot convert"),
        (r"a & b", "alignment"),
        ("  ", "empty formula"),
    ],
)
def test_what_cannot_be_converted_is_a_clear_error(tex, needle):
    with pytest.raises(TexError, match=re.escape(needle)):
        tex_to_mathml(tex)


# --------------------------------------------------------------------------- the page


def test_markdown_never_touches_tex(tmp_path):
    md = nbformat.v4.new_markdown_cell(
        "Products $a_1 * b_2$ and $c_3 * d_4$, a backslash $\\{x\\}$ and display\n\n"
        "$$\\sum_{i=1}^n x_i^2 \\quad \\text{for *all* } i$$\n\nand a real *emphasis*."
    )
    page = export_html(_notebook(md), strict=True)
    body = page[page.index("<main>") :]
    assert body.count("<em>") == 1, "underscores or stars inside a formula became emphasis"
    formulas = ANNOTATION.findall(body)
    assert formulas == [r"a_1 * b_2", r"c_3 * d_4", r"\{x\}", r"\sum_{i=1}^n x_i^2 \quad \text{for *all* } i"]
    assert "$" not in re.sub(r"<math.*?</math>", "", body, flags=re.S)


def test_page_is_complete_on_its_own(tmp_path):
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
    )
    (tmp_path / "dot.png").write_bytes(png)
    code = nbformat.v4.new_code_cell("x = 1", execution_count=1)
    code.outputs = [
        nbformat.v4.new_output("display_data", {"text/latex": "$$\\hat\\theta = \\tfrac12$$", "text/plain": "x"}),
        nbformat.v4.new_output("display_data", {"text/markdown": "Output with $\\lVert z\\rVert$", "text/plain": "y"}),
        nbformat.v4.new_output("display_data", {"image/png": base64.b64encode(png).decode()}),
    ]
    md = nbformat.v4.new_markdown_cell(
        "# Title\n\nSee $\\mathcal N(0, 1)$ and ![a dot](dot.png) and [a paper](https://doi.org/10.1/x)."
    )
    page = export_html(_notebook(md, code), name="demo", path=tmp_path, strict=True)
    assert external_resources(page) == []
    assert "<title>demo</title>" in page
    assert len(ANNOTATION.findall(page)) == 3  # markdown cell, text/latex and text/markdown outputs
    assert page.count('src="data:image/png;base64,') == 2  # the markdown image is embedded too
    assert '<a href="https://doi.org/10.1/x">' in page  # plain links stay: they load nothing
    for gone in ("mathjax", "require.js", "require.min.js", "mermaid", "unpkg", "cdnjs"):
        assert gone not in page.lower(), gone


def test_the_math_font_subset_covers_the_page():
    from fontTools.ttLib import TTFont

    md = nbformat.v4.new_markdown_cell(
        r"$$\hat z_c = \operatorname{softmax}\Big(\tfrac{1}{n_c}\textstyle\sum_{i \in c} \log g(x_i)\Big)$$"
    )
    page = export_html(_notebook(md), strict=True)
    match = re.search(r'font-family: "([^"]+)"; src: url\(data:font/woff;base64,([A-Za-z0-9+/=]+)\)', page)
    assert match and match.group(1) == FONT_FAMILY
    font = TTFont(io.BytesIO(base64.b64decode(match.group(2))))
    assert "MATH" in font, "without the MATH table a browser cannot enlarge sums or stretch delimiters"
    assert font["name"].getDebugName(1) == FONT_FAMILY  # renamed, as the font's license asks
    cmap = font.getBestCmap()
    for char in "\u2211\u2208\u02c6()" + "\U0001d467\U0001d45b\U0001d450\U0001d454\U0001d465\U0001d456":
        assert ord(char) in cmap, f"U+{ord(char):04X} missing from the subset"
    assert len(match.group(2)) < 60_000, "the subset should hold only what the page uses"
    assert FONT_PATH.stat().st_size > 500_000  # the full font stays in the package, not in the page


def test_a_page_without_math_embeds_no_font():
    page = export_html(_notebook(nbformat.v4.new_markdown_cell("No formula here.")), strict=True)
    assert "@font-face" not in page and "<math" not in page and external_resources(page) == []


def test_an_unconvertible_formula_is_kept_as_tex_with_a_warning():
    md = nbformat.v4.new_markdown_cell(r"Broken $\foo x$ here.")
    with pytest.warns(UserWarning, match=r"unsupported TeX command \\foo"):
        page = export_html(_notebook(md))
    assert '<code class="perslib-tex-error"' in page and "$\\foo x$" in page
    with pytest.raises(TexError, match=r"\\foo"):
        export_html(_notebook(md), strict=True)


# --------------------------------------------------------------------------- the checker


@pytest.mark.parametrize(
    "html",
    [
        '<script src="https://cdnjs.example/mathjax.js"></script>',
        '<link rel="stylesheet" href="//fonts.example/css">',
        '<img src="http://example.org/a.png">',
        '<img srcset="data:image/png;base64,AA 1x, https://example.org/b.png 2x">',
        "<style>@import url('https://example.org/x.css');</style>",
        "<style>@font-face { src: url(https://example.org/f.woff2); }</style>",
        '<div style="background: url(https://example.org/bg.png)"></div>',
        '<script type="module">const m = await import("https://example.org/m.mjs");</script>',
        '<img src="figures/local.png">',  # not embedded: missing on a collaborator's machine
    ],
)
def test_external_resources_finds_what_a_page_would_load(html):
    assert len(external_resources(f"<html><head></head><body>{html}</body></html>")) == 1


def test_external_resources_ignores_links_data_and_fragments():
    html = (
        '<a href="https://doi.org/10.1/x">paper</a><a href="#top">top</a>'
        '<img src="data:image/png;base64,AAAA"><style>.x { background: url(data:image/svg+xml;base64,AA) }</style>'
        '<svg><use href="#icon"></use></svg><script>var x = 1;</script>'
    )
    assert external_resources(html) == []


def test_stock_nbconvert_export_is_what_the_checker_catches():
    from nbconvert import HTMLExporter

    md = nbformat.v4.new_markdown_cell("$x$")
    stock, _ = HTMLExporter(template_name="lab", embed_images=True).from_notebook_node(_notebook(md))
    found = " ".join(external_resources(stock))
    assert "mathjax" in found and "require" in found


# --------------------------------------------------------------------------- the notebooks' pages


@pytest.mark.parametrize("py", NOTEBOOKS, ids=IDS)
def test_committed_notebook_exports_self_contained(py):
    """The committed .ipynb holds a default run's outputs: the page a reader gets from make run."""
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    page = export_html(nb, name=py.stem, path=py.parent, strict=True)
    assert external_resources(page) == []
    assert len(ANNOTATION.findall(page)) == len(formulas_of(nb)) > 0
    assert "@font-face" in page and "data:image/png;base64," in page


@pytest.mark.notebook
@pytest.mark.smoke
def test_smoke_run_writes_self_contained_html_with_rendered_math(tmp_path, capsys):
    """``python -m perslib.reports --profile smoke`` as ``make smoke`` runs it, on the notebook
    whose equations the issue names."""
    py = ROOT / "notebooks" / "04_armed_dense.py"
    assert main([str(py), "--profile", "smoke", "--out", str(tmp_path)]) == 0, capsys.readouterr().out
    pages = sorted(tmp_path.rglob("*.html"))
    assert [p.name for p in pages] == ["04_armed_dense.html"]
    page = pages[0].read_text(encoding="utf-8")
    assert external_resources(page) == []
    formulas = ANNOTATION.findall(page)
    assert len(formulas) == len(formulas_of(jupytext.read(py)))
    for tex in (r"\operatorname{logit} \hat y_M", r"L = \mathrm{BCE}(y, \hat y_M)", r"b_{\text{int}}(z)"):
        assert any(f.startswith(tex) for f in formulas), tex
    assert '<math display="block">' in page and "data:image/png;base64," in page
