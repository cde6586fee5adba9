"""Regenerate the data files of the bad-input corpus (deterministic): ``python tests/corpus/generate.py``.

Every live file holds ``id, a, b, c`` rows (a ~ N(0, 1), b ~ N(10, 2), c in x/y/z) unless its
name says what is wrong with it; ``ref.csv`` is the reference every data case starts from.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).parent
DATA = HERE / "data"


def rows(n: int, seed: int, start: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"id": start + i, "a": round(rng.gauss(0, 1), 6), "b": round(rng.gauss(10, 2), 6),
             "c": rng.choice("xxxyyz")} for i in range(n)]


def csv_text(records: list[dict], columns: list[str] | None = None, header: bool = True) -> str:
    columns = columns or list(records[0])
    lines = [",".join(columns)] if header else []
    lines += [",".join(str(r.get(c, "")) for c in columns) for r in records]
    return "\n".join(lines) + "\n"


def write(name: str, text: str | bytes) -> None:
    path = DATA / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)


def main() -> None:
    write("ref.csv", csv_text(rows(300, seed=1)))
    write("ok.csv", csv_text(rows(100, seed=2, start=1000)))
    live = rows(50, seed=3, start=2000)

    def variant(**columns: object) -> list[dict]:
        out = []
        for i, r in enumerate(live):
            r = dict(r)
            for key, value in columns.items():
                r[key] = value(i) if callable(value) else value
            out.append(r)
        return out

    special = ["nan", "inf", "-inf", "NaN", ""]
    write("nan_inf.csv", csv_text(variant(a=lambda i: special[i % 5] if i % 2 else live[i]["a"])))
    write("all_nan_numeric.csv", csv_text(variant(a="nan")))
    write("all_inf_numeric.csv", csv_text(variant(a=lambda i: "inf" if i % 2 else "-inf")))
    write("all_null_numeric.csv", csv_text(variant(a="")))
    write("all_null_categorical.csv", csv_text(variant(c="")))
    write("some_nulls.csv", csv_text(variant(a=lambda i: "" if i % 3 == 0 else live[i]["a"])))
    write("constant_window.csv", csv_text(variant(a=1.0)))
    ref_constant = rows(300, seed=1)
    for r in ref_constant:
        r["a"] = 1.0
    write("ref_constant.csv", csv_text(ref_constant))
    write("strings_in_numeric.csv", csv_text(variant(a=lambda i: "abc" if i == 7 else live[i]["a"])))
    write("mixed_types/part-1.csv", csv_text(variant(a=lambda i: i)))
    write("mixed_types/part-2.csv", csv_text(variant(a=lambda i: f"v{i}")))
    write("renamed_column.csv", csv_text([{**r, "alpha": r["a"]} for r in live], ["id", "alpha", "b", "c"]))
    write("missing_column.csv", csv_text(live, ["id", "a", "c"]))
    write("extra_column.csv", csv_text(variant(z="extra"), ["id", "a", "b", "c", "z"]))
    write("header_only.csv", "id,a,b,c\n")
    write("empty.csv", "")
    write("no_header.csv", csv_text(live, header=False))
    write("semicolons.csv", csv_text(live).replace(",", ";"))
    write("duplicate_header.csv", csv_text(live).replace("id,a,b,c", "a,a,b,c", 1))
    write("huge_values.csv", csv_text(variant(a=lambda i: ["1e308", "-1e308", "1.7976931348623157e308"][i % 3]
                                              if i % 5 == 0 else live[i]["a"])))
    write("all_huge_values.csv", csv_text(variant(a=lambda i: "1e308" if i % 2 else "-1e308")))
    write("new_category.csv", csv_text(variant(c=lambda i: "w" if i % 2 else "q")))
    write("numeric_categorical.csv", csv_text(variant(c=lambda i: i % 3)))
    write("bool_numeric.csv", csv_text(variant(a=lambda i: "true" if i % 2 else "false")))
    text = csv_text(live)
    write("non_utf8.csv", text.encode("utf-8").replace(b",x\n", b",\xff\xfe\n", 3))
    write("bom.csv", b"\xef\xbb\xbf" + text.encode("utf-8"))
    write("crlf.csv", text.replace("\n", "\r\n"))
    write("partial_last_line.csv", text + "2050,0.5,1")
    write("ragged_row.csv", "\n".join(line if i != 10 else "2999,1.0"
                                       for i, line in enumerate(text.splitlines())) + "\n")
    buffer = io.BytesIO()
    table = pa.Table.from_pylist(live)
    pq.write_table(table, buffer)
    whole = buffer.getvalue()
    write("truncated.parquet", whole[: len(whole) // 2])
    write("not_parquet.parquet", text)
    write("ok.parquet", whole)
    json_lines = [json.dumps(r) for r in live]
    write("bad_line.jsonl", "\n".join(json_lines[:20] + ['{"id": 2020, "a": 0.1, "b":'] + json_lines[21:]) + "\n")
    write("mixed_json_types.jsonl", "\n".join(
        json.dumps({**r, "a": "high"} if i == 30 else r) for i, r in enumerate(live)) + "\n")
    write("partial_last_line.jsonl", "\n".join(json_lines) + "\n" + json_lines[0][:15])
    write("ref_no_features.csv", csv_text([{"x": i, "y": i * 2} for i in range(50)]))
    write("ref_all_null.csv", csv_text([{**r, "a": ""} for r in rows(100, seed=1)]))
    ts_bad = [{**r, "ts": "not a time" if i % 2 else "2024-01-01T00:00:00Z"} for i, r in enumerate(live)]
    write("bad_timestamps.csv", csv_text(ts_bad))
    ts_null = [{**r, "ts": ""} for r in live]
    write("null_timestamps.csv", csv_text(ts_null))
    ts_ok = [{**r, "ts": f"2024-01-01T00:{i:02d}:00Z"} for i, r in enumerate(live)]
    write("ok_timestamps.csv", csv_text(ts_ok))
    ts_ref = [{**r, "ts": f"2023-12-31T00:{i % 60:02d}:00Z"} for i, r in enumerate(rows(300, seed=1))]
    write("ref_timestamps.csv", csv_text(ts_ref))
    write("one_row.csv", csv_text(live[:1]))
    hostile(live, text, json_lines)


def hostile(live: list[dict], text: str, json_lines: list[str]) -> None:
    """Issue 14: line endings and partial records, files rewritten in place, columns that change type."""
    write("line_endings/cr_only.csv", text.replace("\n", "\r"))
    lines = text.splitlines()
    endings = ["\n", "\r\n", "\r"]
    write("line_endings/mixed.csv", "".join(line + endings[i % 3] for i, line in enumerate(lines)))
    write("line_endings/cr_only.jsonl", "\r".join(json_lines) + "\r")
    write("line_endings/cr_only_partial.csv", text.replace("\n", "\r") + "2050,0.5,1")
    notes = ["one, two", "line\nbreak", "cr\r\nlf", "old\rmac", 'say ""hi""']
    quoted = ["id,a,b,c,note"] + [f'{r["id"]},{r["a"]},{r["b"]},{r["c"]},"{notes[i % 5]}"' for i, r in enumerate(live)]
    write("line_endings/quoted_newlines.csv", "\n".join(quoted) + "\n")
    # the writer stopped inside a quoted value that holds a line ending (a record still being written)
    write("line_endings/quoted_partial.csv", text + '2050,"0.5\n')
    more = rows(30, seed=4, start=3000)
    write("rewrite/rotated.csv", csv_text(more))
    write("rewrite/replacement.csv", csv_text(rows(120, seed=5, start=4000)))
    ok = rows(100, seed=2, start=1000)
    write("rewrite/ok_grown.csv", csv_text(ok + rows(20, seed=6, start=5000)))
    write("rewrite/rotated.jsonl", "\n".join(json.dumps(r) for r in more) + "\n")
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(ok), buffer)
    write("rewrite/ok_100.parquet", buffer.getvalue())
    na = ["n/a", "", "-", "NULL", "?"]
    write("type_change/numbers.csv", csv_text(live))
    write("type_change/some_na.csv", csv_text([{**r, "a": na[i // 10] if i % 10 == 0 else r["a"]}
                                                for i, r in enumerate(rows(50, seed=7, start=6000))]))
    write("type_change/bools.csv", csv_text([{**r, "a": "true" if i % 2 else "false"} for i, r in enumerate(live)]))
    write("type_change/categories_as_ints.csv", csv_text([{**r, "c": i % 3} for i, r in enumerate(live)]))
    write("type_change/text_then_numbers.jsonl", "\n".join(
        json.dumps({**r, "a": str(r["a"])} if i < 10 else r) for i, r in enumerate(live)) + "\n")


if __name__ == "__main__":
    main()
