"""Video in (DESIGN §1, video -> motion): decoding any common video, streamed, and
tracking a person's pose landmarks over it into core.capture's plain data."""
