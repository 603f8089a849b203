"""What an operator does to a library outside SCSI: look, insert, remove, add, inject faults.

The daemon runs these on behalf of its control socket; with no daemon running
the command line runs them on the library directory directly.
"""

from __future__ import annotations

from . import media
from .library import DRIVE, IMPORT_EXPORT, STORAGE, Library, LibraryError
from .sense import CheckCondition


def _device(library: Library, name: str):
    if name == "changer":
        return library.changer
    if name.startswith("drive") and name[5:].isdigit() and int(name[5:]) < len(library.drives):
        return library.drives[int(name[5:])]
    raise LibraryError(
        f"no device {name!r} (devices: changer, " + ", ".join(f"drive{i}" for i in range(len(library.drives))) + ")"
    )


def _element_view(library: Library, element) -> dict:
    view = {"address": element.address, "barcode": element.barcode}
    number = library.slot_number(element.address)
    if number is not None:
        view["slot"] = number
    if element.kind == IMPORT_EXPORT:
        view["imported"] = element.imported
    if element.kind == DRIVE and element.source is not None:
        view["source_slot"] = library.slot_number(element.source)
    return view


def status(library: Library) -> dict:
    drives = []
    for drive, element in zip(library.drives, library.elements_of(DRIVE), strict=True):
        view = _element_view(library, element)
        view.update(
            name=f"drive{drive.index}",
            path=str(library.path / f"drive{drive.index}"),
            vendor=drive.identity.vendor,
            product=drive.identity.product,
            serial=drive.identity.serial,
            generation=drive.generation,
            loaded=drive.threaded,
            position=drive.position if drive.threaded else None,
        )
        drives.append(view)
    in_library = {e.barcode for e in library.elements if e.barcode}
    cartridges = []
    for barcode in library.cartridge_barcodes():
        meta = library.cartridge(barcode).meta
        cart = library.cartridge(barcode)
        cartridges.append(
            {
                "barcode": barcode,
                "generation": meta["generation"],
                "worm": meta["worm"],
                "cleaning": meta["cleaning"],
                "capacity": meta["capacity"],
                "used": cart.data_end,
                "write_protected": meta["write_protected"],
                "in_library": barcode in in_library,
            }
        )
    return {
        "path": str(library.path),
        "changer": {"path": str(library.path / "changer"), "serial": library.changer.identity.serial},
        "drives": drives,
        "storage": [_element_view(library, e) for e in library.elements_of(STORAGE)],
        "import_export": [_element_view(library, e) for e in library.elements_of(IMPORT_EXPORT)],
        "cartridges": cartridges,
    }


def parse_sense(text: str) -> tuple[int, int, int]:
    """'3/11/00' -> (3, 0x11, 0x00): sense key, ASC, ASCQ in hex."""
    try:
        key, asc, ascq = (int(part, 16) for part in text.split("/"))
    except ValueError:
        raise LibraryError(f"bad sense {text!r}: write KEY/ASC/ASCQ in hex, e.g. 3/11/00") from None
    if not (0 <= key <= 0xF and 0 <= asc <= 0xFF and 0 <= ascq <= 0xFF):
        raise LibraryError(f"bad sense {text!r}: key 0-F, ASC and ASCQ 00-FF")
    return key, asc, ascq


def fault(
    library: Library,
    device: str,
    *,
    fail_next: int = 0,
    sense_code: str = "4/44/00",
    media_error_block: int | None = None,
    not_ready: bool | None = None,
    tape_alerts: list[int] = (),
    stale_inventory: bool = False,
    clear: bool = False,
) -> dict:
    """Make a device misbehave on purpose (or behave again with clear)."""
    target = _device(library, device)
    if clear:
        target.injected_failures.clear()
        if device == "changer":
            target.stale_slots.clear()
        else:
            target.not_ready_fault = False
            target.tape_alerts.clear()
            if target.cartridge is not None:
                target.cartridge.meta.pop("media_errors", None)
                target.cartridge.save_meta()
        return {"cleared": device}
    if fail_next:
        key, asc, ascq = parse_sense(sense_code)
        target.injected_failures.extend(CheckCondition(key, asc, ascq) for _ in range(fail_next))
    if device == "changer" and (media_error_block is not None or not_ready is not None or tape_alerts):
        raise LibraryError("media errors, not-ready and TapeAlert faults apply to drives")
    if stale_inventory:
        if device != "changer":
            raise LibraryError("a stale inventory applies to the changer")
        # The slots that hold a cartridge now read as empty until the changer is reset.
        target.stale_slots = {e.address for e in library.elements_of(STORAGE) if e.full}
    if media_error_block is not None:
        if target.cartridge is None:
            raise LibraryError(f"{device} holds no cartridge to put a media error on")
        errors = set(target.cartridge.meta.get("media_errors", []))
        target.cartridge.meta["media_errors"] = sorted(errors | {media_error_block})
        target.cartridge.save_meta()
    if not_ready is not None:
        target.not_ready_fault = not_ready
    for flag in tape_alerts:
        if not 1 <= flag <= 0x40:
            raise LibraryError(f"TapeAlert flag {flag} is outside 1..64")
        target.tape_alerts.add(flag)
    answer = {"device": device, "pending_failures": len(target.injected_failures)}
    if device == "changer":
        answer["stale_slots"] = sorted(library.slot_number(address) for address in target.stale_slots)
    return answer


def run(library: Library, request: dict) -> dict:
    """Carry out one control request (the control socket's JSON object)."""
    op = request.get("op")
    args = {k: v for k, v in request.items() if k != "op"}
    if op == "status":
        return status(library)
    if op == "insert":
        element = library.insert(args["barcode"], args.get("address"))
        return {"barcode": args["barcode"], "slot": library.slot_number(element.address)}
    if op == "remove":
        library.remove(args["barcode"])
        return {"barcode": args["barcode"]}
    if op == "add-cartridge":
        capacity = media.parse_size(args["capacity"]) if args.get("capacity") else None
        early_warning = media.parse_size(args["early_warning"]) if args.get("early_warning") else None
        element = library.add_cartridge(args["barcode"], capacity, early_warning, shelf=args.get("shelf", False))
        return {"barcode": args["barcode"], "slot": library.slot_number(element.address) if element else None}
    if op == "add-cartridges":
        capacity = media.parse_size(args["capacity"]) if args.get("capacity") else None
        elements = library.add_cartridges(args["barcodes"], capacity, shelf=args.get("shelf", False))
        return {"slots": [library.slot_number(e.address) if e else None for e in elements]}
    if op == "write-protect":
        cart = library.cartridge(args["barcode"])
        cart.meta["write_protected"] = bool(args.get("on", True))
        cart.save_meta()
        return {"barcode": args["barcode"], "write_protected": cart.meta["write_protected"]}
    if op == "fault":
        return fault(library, **args)
    raise LibraryError(f"unknown control operation {op!r}")
