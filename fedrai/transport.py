"""Adapter tensors on the wire: Flower ArrayRecords in a configured dtype.

Flower arrays cannot hold bfloat16, and fp16 halves the traffic of fp32; the receiver always
gets float32 tensors back, whatever travelled.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from flwr.app import ArrayRecord

_WIRE = {"float32": torch.float32, "float16": torch.float16}


def to_arrays(state: dict[str, torch.Tensor], wire_dtype: str = "float32") -> ArrayRecord:
    dtype = _WIRE[wire_dtype]
    return ArrayRecord.from_torch_state_dict(
        OrderedDict(
            (k, v.detach().to("cpu", dtype=dtype if v.is_floating_point() else v.dtype))
            for k, v in state.items()
        )
    )


def from_arrays(record: ArrayRecord) -> OrderedDict[str, torch.Tensor]:
    return OrderedDict(
        (k, v.float() if v.is_floating_point() else v) for k, v in record.to_torch_state_dict().items()
    )


def payload_bytes(record: ArrayRecord) -> int:
    """Bytes of the array payload (data plus keys), as Flower counts them."""
    return record.count_bytes()
