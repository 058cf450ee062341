"""The normative vectors (spec/vectors/v1.*/, FORMAT.md 12): every folder x
every decoder, where a decoder is each plada_codec backend and the
educational decoder written from the spec alone (spec/educational_decoder.py
with spec/educational_cm.py).

A new minor version is a new folder ``spec/vectors/v1.N/`` (``NNN-name.bin`` +
``.json``, an ``invalid/`` folder, a README and its ``make_vectors.py``): this
suite finds it, and no test file changes. The spec's error classes map to
plada_codec's through the one table ``plada_codec._errors.SPEC_ERRORS``.

The valid vectors' JSON was written from plada_codec's own decode output
(each folder's make_vectors.py), so for plada_codec they are a regression
test; the educational decoder, which shares no code with it, is the
independent check. The invalid vectors name the spec's own classes (9.1).
"""

import json
import subprocess
import sys

import pytest
import zstandard

import plada_codec
from plada_codec import wire
from plada_codec._errors import SPEC_ERRORS
from tests.conftest import BACKENDS
from tests.helpers import REPO
from tests.spec import educational as edu

SPEC = REPO / "spec"
ROOT = SPEC / "vectors"
FOLDERS = sorted(p for p in ROOT.glob("v1.*") if p.is_dir())
VALID = [p for folder in FOLDERS for p in sorted(folder.glob("*.bin"))]
INVALID = [p for folder in FOLDERS for p in sorted((folder / "invalid").glob("*.bin"))]
DECODERS = [*BACKENDS, "educational"]
ZSTD_VERSION = ".".join(map(str, zstandard.ZSTD_VERSION))
CONTENT_KEYS = edu.CONTENT_KEYS  # FORMAT.md 12: the decoded content every valid vector's JSON records

pytestmark = pytest.mark.codec  # scripts/sanitize.sh runs every test file so marked


educational, educational_cm = edu.decoder, edu.cm


def _id(path):
    return f"{path.parent.name}/{path.stem}" if path.parent.name != "invalid" else \
        f"{path.parent.parent.name}/invalid/{path.stem}"


def _meta(path):
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def _generator(folder):
    """The script that writes *folder*: its own make_vectors.py (1.0's lives one level up)."""
    own = folder / "make_vectors.py"
    return own if own.exists() else ROOT / "make_vectors.py"


def _decode(decoder, data, meta):
    """The decoded content, or the spec's error class name the decoder reports."""
    bound = meta.get("reference")
    limits = meta.get("limits", {})
    if decoder == "educational":
        reference = None if bound is None else (bound["n_ref"], bytes.fromhex(bound["fingerprint"]))
        try:
            return educational.decode(data, reference=reference, **limits)
        except educational.DecodeError as exc:
            return exc.kind
    reference = None if bound is None else plada_codec.ReferenceSet(bound["n_ref"], bytes.fromhex(bound["fingerprint"]))
    try:
        return plada_codec.decode(data, backend=decoder, reference=reference, **limits).to_dict()
    except plada_codec.PayloadError as exc:
        kinds = [kind for kind, cls in SPEC_ERRORS.items() if type(exc) is cls]
        assert kinds, f"{type(exc).__name__} is no error class of FORMAT.md 9.1: {exc}"
        return kinds[0]


def test_every_folder_is_a_version_with_vectors():
    assert [f.name for f in FOLDERS][:2] == ["v1.0", "v1.1"]
    for folder in FOLDERS:
        # 1.0's README and generator are the ones in spec/vectors/; later versions bring their own.
        assert ((folder / "README.md").exists() or folder.name == "v1.0") and _generator(folder).exists(), folder.name
        assert list(folder.glob("*.bin")) and list((folder / "invalid").glob("*.bin")), folder.name
        for path in [*folder.glob("*.bin"), *(folder / "invalid").glob("*.bin")]:
            assert path.with_suffix(".json").exists(), path


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("path", VALID, ids=_id)
def test_valid_vector_decodes(decoder, path):
    meta = _meta(path)
    content = _decode(decoder, path.read_bytes(), meta)
    assert isinstance(content, dict), f"{decoder} rejects a valid vector: {content}"
    # Every field FORMAT.md 12 lists, from the expected side: a decoder that
    # returns {} or leaves a field out fails here.
    assert {key: content.get(key, "<missing>") for key in CONTENT_KEYS} == {key: meta[key] for key in CONTENT_KEYS}


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("path", INVALID, ids=_id)
def test_invalid_vector_rejected_with_its_class(decoder, path):
    meta = _meta(path)
    assert meta["error"] in SPEC_ERRORS
    assert _decode(decoder, path.read_bytes(), meta) == meta["error"]


@pytest.mark.parametrize("path", [p for p in VALID if _meta(p)["reencode"]], ids=_id)
def test_valid_vector_reencodes(backend, path):
    meta = _meta(path)
    options = dict(meta["encode_options"])
    if "reference" in options:
        options["reference"] = bytes.fromhex(options["reference"])
    uses_zstd = any(s.compression for s in plada_codec.inspect(path.read_bytes()).sections)
    if uses_zstd and meta["zstd_version"] != ZSTD_VERSION:
        pytest.skip(f"vector made with libzstd {meta['zstd_version']}, this is {ZSTD_VERSION}")
    data = plada_codec.encode(meta["indices"], meta["labels"], class_names=meta["class_names"],
                              task_name=meta["task_name"], metadata=meta["metadata"], backend=backend, **options)
    assert data == path.read_bytes()


@pytest.mark.parametrize("path", [p for p in VALID if wire.split(p.read_bytes()).sections[0].codec == 2], ids=_id)
def test_the_spec_encoder_writes_each_context_model_body(path):
    """15.8's encoder, written from the spec alone, writes the vector's index body byte for byte."""
    meta = _meta(path)
    index = wire.split(path.read_bytes()).sections[0]
    args = (meta["indices"], meta["labels"], meta["n_ref"], meta["n_classes"])
    assert educational_cm.encode_cm_body(*args, preset=index.body[0]) == index.body


def test_every_error_class_has_an_invalid_vector():
    assert {_meta(p)["error"] for p in INVALID} == set(SPEC_ERRORS)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.name)
def test_vectors_are_up_to_date(folder):
    """Each folder matches what its make_vectors.py writes (regenerating is explicit, never done here)."""
    if any(_meta(p)["zstd_version"] != ZSTD_VERSION for p in folder.glob("*.bin")):
        pytest.skip("vectors were made with another libzstd")
    result = subprocess.run([sys.executable, str(_generator(folder)), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
