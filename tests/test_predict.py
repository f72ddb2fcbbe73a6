"""predict.py end to end: every input and output format, input order, decoding settings, and bad inputs."""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np
import pytest
import torch
from inference_support import TEXTS, THRESHOLDS, read_jsonl, run_script, save_tiny_model

import predict
from inference.io import InputError, read_texts_file
from inference.runner import length_order, load_backend, predict_texts
from modeling.postprocessing import decode_outputs


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"), tokenizer)


@pytest.fixture(scope="module")
def reference(model_dir):
    """Per-text results computed one text at a time, straight from the model's forward (no batching, no sorting)."""
    from modeling import MultiTaskModel

    model = MultiTaskModel.from_pretrained(model_dir).eval()
    backend = load_backend(model_dir)
    rows = []
    for text in TEXTS:
        encoded = backend.tokenizer([text], return_tensors="pt")
        with torch.no_grad():
            logits = model(**encoded).logits
        arrays = {k: v.numpy() for k, v in logits.items()}
        rows.append(decode_outputs(model.config.tasks, arrays, model.config.thresholds, model.config.temperatures)[0])
    return rows


def assert_same_results(got: list[dict], expected: list[dict], tol: float = 1e-5) -> None:
    """Same labels everywhere; probabilities and regression values equal within `tol`."""
    assert len(got) == len(expected)
    for row, ref in zip(got, expected):
        for task, res in ref.items():
            assert row[task].get("label") == res.get("label") and row[task].get("labels") == res.get("labels")
            for key in ("probabilities", "values"):
                if key in res:
                    assert list(row[task][key]) == list(res[key])
                    np.testing.assert_allclose(list(row[task][key].values()), list(res[key].values()), atol=tol)
            if "probability" in res:
                assert row[task]["probability"] == pytest.approx(res["probability"], abs=tol)


def test_txt_input_to_jsonl_matches_unbatched_forward(model_dir, reference, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    assert predict.main(["--model", str(model_dir), "--input", str(source), "--output", str(out),
                         "--batch-size", "3"]) == 0
    rows = read_jsonl(out)
    assert [r["text"] for r in rows] == TEXTS
    assert_same_results([{k: v for k, v in r.items() if k != "text"} for r in rows], reference)


def test_csv_input_with_text_column_to_csv_output(model_dir, reference, tmp_path):
    source = tmp_path / "in.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "tweet"])
        writer.writerows([[i, t] for i, t in enumerate(TEXTS)])
    out = tmp_path / "pred.csv"
    assert predict.main(["--model", str(model_dir), "--input", str(source), "--text-column", "tweet",
                         "--output", str(out)]) == 0
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["text"] for r in rows] == TEXTS
    assert [r["sentiment"] for r in rows] == [ref["sentiment"]["label"] for ref in reference]
    assert [r["emotions"] for r in rows] == ["|".join(ref["emotions"]["labels"]) for ref in reference]
    np.testing.assert_allclose([float(r["vad_A"]) for r in rows], [ref["vad"]["values"]["A"] for ref in reference],
                               atol=1e-5)
    assert {"ei_probability", "sentiment_prob_positive", "emotions_prob_fear"} <= set(rows[0])


def test_jsonl_and_tsv_inputs_and_repeated_text_flag(model_dir, reference, tmp_path, capsys):
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"body": t, "n": i}) + "\n" for i, t in enumerate(TEXTS)), encoding="utf-8")
    tsv = tmp_path / "in.tsv"
    tsv.write_text("text\n" + "\n".join(t.replace("\t", " ") for t in TEXTS[:3]) + "\n", encoding="utf-8")
    assert read_texts_file(jsonl, "body") == TEXTS
    assert read_texts_file(tsv) == TEXTS[:3]
    assert predict.main(["--model", str(model_dir), "--text", TEXTS[0], "--text", TEXTS[4], "--quiet"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == [TEXTS[0], TEXTS[4]]
    assert rows[1]["sentiment"]["label"] == reference[4]["sentiment"]["label"]


def test_stdin_input(model_dir, monkeypatch, capsys):
    stdin = io.TextIOWrapper(io.BytesIO("\n".join(TEXTS[:4]).encode("utf-8")), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    assert predict.main(["--model", str(model_dir), "--quiet", "--input", "-"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == TEXTS[:4]
    assert set(rows[0]) == {"text", "sentiment", "emotions", "ei", "vad"}


def test_input_order_survives_length_sorting(model_dir):
    assert length_order(["ccc", "a", "bb", ""]) == [3, 1, 2, 0]
    backend = load_backend(model_dir)
    forward = predict_texts(backend, TEXTS, batch_size=3)
    backward = predict_texts(backend, TEXTS[::-1], batch_size=3)
    assert_same_results(backward[::-1], forward)
    assert [r["vad"]["values"]["V"] for r in forward] != sorted(r["vad"]["values"]["V"] for r in forward)


def test_thresholds_and_temperatures_from_config_are_applied(model_dir, reference):
    rows = predict_texts(load_backend(model_dir), TEXTS)
    assert all("joy" in r["emotions"]["labels"] and "anger" not in r["emotions"]["labels"] for r in rows)
    assert all((r["ei"]["label"] == "E") == (r["ei"]["probability"] >= THRESHOLDS["ei"]["E"]) for r in rows)
    from modeling import MultiTaskModel

    model = MultiTaskModel.from_pretrained(model_dir).eval()
    encoded = load_backend(model_dir).tokenizer([TEXTS[0]], return_tensors="pt")
    with torch.no_grad():
        logits = model(**encoded).logits["sentiment"][0].numpy().astype(np.float64)
    cooled = np.exp(logits / 1.7) / np.exp(logits / 1.7).sum()
    np.testing.assert_allclose(list(rows[0]["sentiment"]["probabilities"].values()), cooled, atol=1e-6)
    assert not np.allclose(cooled, np.exp(logits) / np.exp(logits).sum(), atol=1e-3)


def test_input_reader_errors_are_input_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2: invalid JSON"):
        read_texts_file(bad)
    txt = tmp_path / "t.txt"
    txt.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(InputError, match="--text-column needs"):
        read_texts_file(txt, "body")


def _corrupt_copy(model_dir, tmp_path, name, mutate):
    import shutil

    folder = tmp_path / name
    shutil.copytree(model_dir, folder)
    mutate(folder / "model.safetensors")
    return folder


def _without_tokenizer(model_dir, tmp_path):
    """A save killed before the tokenizer was written (before atomic outputs, predict.py served it anyway)."""
    import shutil

    folder = tmp_path / "no_tokenizer"
    shutil.copytree(model_dir, folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    return folder


def _plain_onnx(path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(path))
    return path


BAD_INPUTS = {
    "not_a_model_folder": (lambda d, t: ["--model", str(t), "--text", "x"], "not a saved model folder"),
    "truncated_weights": (
        lambda d, t: ["--model", str(_corrupt_copy(d, t, "trunc", lambda p: os.truncate(p, p.stat().st_size // 2))),
                      "--text", "x"], "corrupt or truncated"),
    "corrupt_weights": (
        lambda d, t: ["--model", str(_corrupt_copy(d, t, "garbage", lambda p: p.write_bytes(b"\x07" * 300))),
                      "--text", "x"], "corrupt or truncated"),
    "folder_without_tokenizer": (lambda d, t: ["--model", str(_without_tokenizer(d, t)), "--text", "x"],
                                 "has no saved tokenizer"),
    "onnx_without_metadata": (lambda d, t: ["--model", str(_plain_onnx(t / "plain.onnx")), "--text", "x"],
                              "no multi-task metadata"),
    "empty_input_file": (lambda d, t: ["--model", str(d), "--input", str(_write(t / "e.txt", b""))], "is empty"),
    "missing_text_column": (lambda d, t: ["--model", str(d), "--input", str(_write(t / "c.csv", b"a,b\n1,2\n")),
                                          "--text-column", "body"], "no text column 'body'"),
    "non_utf8_input": (lambda d, t: ["--model", str(d), "--input", str(_write(t / "l1.txt", b"caf\xe9 au lait"))],
                       "not valid UTF-8"),
    "bad_output_suffix": (lambda d, t: ["--model", str(d), "--text", "x", "--output", str(t / "p.xlsx")],
                          "unknown suffix '.xlsx'"),
}


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_and_nonzero_exit(case, model_dir, tmp_path):
    make_args, expected = BAD_INPUTS[case]
    result = run_script("predict.py", *make_args(model_dir, tmp_path), timeout=60)
    stderr = result.stderr.decode("utf-8", errors="replace")
    assert result.returncode == 2
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert expected in stderr and stderr.startswith("predict.py: error: ")


def test_stdin_reader_handles_bom_and_blank_lines():
    from inference.io import read_texts_stream

    assert read_texts_stream(io.BytesIO("\ufeffone\n\nthree\n".encode())) == ["one", "", "three"]
    with pytest.raises(InputError, match="standard input is empty"):
        read_texts_stream(io.BytesIO(b"\n  \n"))


def test_txt_lines_split_on_newlines_only(model_dir, tmp_path):
    path = tmp_path / "three.txt"
    path.write_bytes("first line with a \u2028 line separator\r\nsecond \x0c with a form feed\nthird\u0085 next line\n"
                     .encode())
    out = tmp_path / "out.jsonl"
    assert predict.main(["--model", str(model_dir), "--input", str(path), "--output", str(out), "--quiet"]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]
    assert [r["text"] for r in records] == ["first line with a \u2028 line separator", "second \x0c with a form feed",
                                            "third\u0085 next line"]
