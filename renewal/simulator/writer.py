"""Writing the simulated tables: small ones through :func:`renewal.datadir.write_table`, the
large ``usage`` table streamed chunk by chunk into one file that appears atomically.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from renewal.datadir import Format, atomic_path


class TableSink(Protocol):
    def write_table(self, table: pa.Table) -> None: ...


@contextmanager
def streaming_writer(out_dir: Path, name: str, fmt: Format, schema: pa.Schema
                     ) -> Iterator[TableSink]:
    """Append Arrow chunks to ``<out_dir>/<name>.<fmt>``; the file appears only on success.

    Parquet gets one row group per chunk; CSV one header, then the chunks' rows.
    """
    with atomic_path(Path(out_dir) / f"{name}.{fmt}") as tmp:
        if fmt == "parquet":
            writer: TableSink = pq.ParquetWriter(tmp, schema, compression="snappy")
        else:
            writer = pa_csv.CSVWriter(tmp, schema)
        try:
            yield writer
        finally:
            writer.close()  # type: ignore[attr-defined]
