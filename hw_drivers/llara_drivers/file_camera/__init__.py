"""File camera (kind "file"): frames replayed from an .npz, a PNG directory or a video.

- `io`: the readers (`load_recording`) and `save_npz`, which writes frames the camera reads back.
- `camera`: `FileCamera`.
"""
