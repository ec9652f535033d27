"""`shipml explain` for image models: which region of each photo made the model answer.

`-o why.png` writes the heat map over the photo (one image); `-o folder/` one PNG per image,
named after the image file; `-o why.csv` a table (image, prediction, probability, region).
Without `-o`, a table on screen: the answer and the region that mattered most.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shipml.cli.render import console, err_console, fmt
from shipml.errors import UsageError

__all__ = ["wants_heat_map", "explain_images_command"]


def wants_heat_map(output: Path | None) -> bool:
    """-o names a PNG file (only image models can write one)."""
    return output is not None and output.suffix.lower() == ".png"


def explain_images_command(model, data: Path, *, output: Path | None, as_json: bool,
                           rows: int, grid: int) -> None:  # fmt: skip
    from shipml.images.explain import image_column, image_names

    frame = model.input_frame(data)
    target = _target(output, len(frame), data)
    column = image_column(model, None)
    if target == "folder":  # checked before the work
        paths = _folder_paths(output, image_names(model, frame, column), frame[column])
    items = _explained(model, frame, grid)
    say = (lambda _: None) if as_json else (lambda m: console.print(m, highlight=False))
    if as_json:
        sys.stdout.write(json.dumps([e.to_dict() for e in items], indent=1, default=str) + "\n")
    elif output is None:
        _show(items, rows)
    if target == "png":
        _write(output, items[0].overlay_png())
        say(f"wrote the heat map of {items[0].name} to {output}")
    elif target == "csv":
        from shipml.cli.use import write_csv
        from shipml.images.explain import explanations_frame

        write_csv(explanations_frame(items).drop(columns=["heat"]), output)
        say(f"wrote {len(items):,} explanations to {output}")
    elif target == "folder":
        output.mkdir(parents=True, exist_ok=True)
        for item, path in zip(items, paths):
            _write(path, item.overlay_png())
        say(f"wrote {len(items):,} heat maps to {output}/")


def _explained(model, frame, grid: int):
    """model.explain_image with a progress bar on stderr past one image (each takes ~grid²
    encodes: seconds)."""
    if len(frame) < 2 or not err_console.is_terminal:
        return model.explain_image(frame, grid=grid)
    from rich.progress import Progress

    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("heat maps", total=len(frame))
        return model.explain_image(
            frame, grid=grid, on_image=lambda done, _: bar.update(task, completed=done)
        )


def _target(output: Path | None, n: int, data: Path) -> str | None:
    """What -o asks for: "png" (one file), "csv", "folder" or None; checked before any work."""
    if output is None:
        return None
    suffix = output.suffix.lower()
    if suffix == ".png":
        if n != 1:
            raise UsageError(f"{data} holds {n} images: give a folder to -o for one heat map PNG "
                             f"per image (e.g. -o {output.with_suffix('')}/)")  # fmt: skip
        return "png"
    if suffix == ".csv":
        return "csv"
    if suffix and not output.is_dir():
        raise UsageError(f"-o {output}: give a .png file (one image), a folder (one PNG per "
                         "image) or a .csv file (the answers and regions)")  # fmt: skip
    if output.exists() and not output.is_dir():
        raise UsageError(f"-o {output} is a file: give a folder for one heat map per image")
    return "folder"


def _folder_paths(folder: Path, names: list[str], cells) -> list[Path]:
    """One `<image stem>.png` per image (-2, -3... when stems repeat), never an input file."""
    inputs = {str(Path(c).resolve()) for c in cells if isinstance(c, str) and c}
    used: set[str] = set()
    paths = []
    for image_name in names:
        stem = Path(image_name).stem or "image"
        name, k = f"{stem}.png", 1
        while name in used:
            k += 1
            name = f"{stem}-{k}.png"
        used.add(name)
        path = folder / name
        if str(path.resolve()) in inputs:
            raise UsageError(f"-o {folder}: writing {name} there would replace the image "
                             "itself; give another folder")  # fmt: skip
        paths.append(path)
    return paths


def _write(path: Path, png: bytes) -> None:
    from shipml.files import atomic_write

    atomic_write(path, png)


def _show(items, rows: int) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="what each image's answer rests on", title_justify="left")
    table.add_column("image")
    table.add_column("prediction")
    table.add_column("probability", justify="right")
    table.add_column("region that mattered most")
    table.add_column("hiding it drops p by", justify="right")
    for item in items[:rows]:
        table.add_row(escape(item.name), escape(fmt(item.prediction)), f"{item.probability:.3f}",
                      item.region, f"{max(float(item.heat.max()), 0.0):.3f}")  # fmt: skip
    console.print(table)
    if len(items) > rows:
        console.print(f"... {len(items) - rows} more images (use --output or --json for all)")
