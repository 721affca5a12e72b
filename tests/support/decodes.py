"""Count the decodes a piece of code makes: every kling.io.decode.iter_frames call, by path."""

from __future__ import annotations


def count_decodes(monkeypatch) -> list[str]:
    """The paths iter_frames is called with from now on (the list fills as the code runs)."""
    import kling.io.decode

    decodes: list[str] = []
    real = kling.io.decode.iter_frames

    def counted(path, *a, **kw):
        decodes.append(str(path))
        return real(path, *a, **kw)

    monkeypatch.setattr(kling.io.decode, "iter_frames", counted)
    return decodes
