"""Oracle check for sdexport's contacts output, after /work/shared/checks/_lib/contacts_check.py.

usage: vobject_check.py [--extended] OUTPUT.vcf INPUT...
Prints one line; exit 0 when everything vobject reads from the inputs is in our output, 1 when
something was lost or the output is not strict, 3 when vobject is missing.

What vobject 0.9 does not do itself, and we do for it before reading an INPUT: strip a UTF-8 BOM,
decode UTF-16, decode legacy 8-bit charsets (via the CHARSET parameter, else cp1252), turn
CR CR LF into CRLF, and join QP soft line breaks (readComponents(allowQP=True); the shared
contacts_check.py uses the default allowQP=False, which cuts QP values at the first soft
break, so its expectations for such inputs are a truncated name that no correct reader gives). Our OUTPUT must be
read strictly: UTF-8, the whole file, no exceptions.

--extended also compares N, ADR, ORG, NOTE and BDAY (normalised: components joined by one
space, white space collapsed). Use it for runs without merging: merging keeps one N per person.
"""
import base64, csv, hashlib, logging, re, sys
try:
    import vobject
except ImportError:
    print("SKIPPED: vobject missing"); sys.exit(3)


logging.disable(logging.CRITICAL)  # vobject logs every line it skips in an input


def digits(s):
    return re.sub(r"\D", "", s or "")[-9:]  # last 9 digits: tolerant to +CC / 0 prefixes


def norm(s):
    # commas and backslash-newlines are separators to compare over (vobject splits some fields
    # on commas, e.g. ORG "Company, The")
    return " ".join(str(s).replace(",", " ").split())


def structured(v):
    # vobject gives Name/Address objects for N/ADR and a list for ORG
    if isinstance(v, (list, tuple)):
        return norm(" ".join(structured(x) for x in v))
    if hasattr(v, "family") or hasattr(v, "street"):
        fields = ("family", "given", "additional", "prefix", "suffix") if hasattr(v, "family") else \
                 ("box", "extended", "street", "city", "region", "code", "country")
        return norm(" ".join(structured(getattr(v, f)) for f in fields))
    return norm(v)


def decode_input(raw):
    try:
        data = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8")
    except UnicodeDecodeError:  # a legacy 8-bit export: decode with the charset it declares
        m = re.search(rb"CHARSET=([A-Za-z0-9_-]+)", raw)
        try:
            data = raw.decode(m.group(1).decode() if m else "cp1252", "replace")
        except LookupError:
            data = raw.decode("cp1252", "replace")
    # vobject reads CR CR LF (iOS 5 exports) as an extra blank line that ends a folded PHOTO
    return data.lstrip("\ufeff").replace("\r\r\n", "\r\n")


def facts(data, path, strict=False, allow_qp=True):
    f = {k: set() for k in ("FN", "TEL", "EMAIL", "PHOTO", "N", "ADR", "ORG", "NOTE", "BDAY")}
    n = 0
    try:
        for card in vobject.readComponents(data, ignoreUnreadable=not strict, allowQP=allow_qp):
            n += 1
            for line in card.lines():
                k, v = line.name.upper(), line.value
                if k == "FN" and str(v).strip() and "\ufffd" not in str(v): f["FN"].add(str(v).strip())
                elif k == "TEL" and digits(str(v)): f["TEL"].add(digits(str(v)))
                elif k == "EMAIL" and "@" in str(v): f["EMAIL"].add(str(v).strip().lower())
                elif k == "PHOTO" and isinstance(v, (bytes, bytearray)) and len(v) > 16:
                    f["PHOTO"].add(hashlib.sha256(v).hexdigest())
                elif k == "PHOTO" and str(v).startswith("data:") and ";base64," in str(v):
                    # vobject does not decode 4.0 data: URIs; we do, to compare the bytes
                    b = base64.b64decode(str(v).split(",", 1)[1])
                    if len(b) > 16: f["PHOTO"].add(hashlib.sha256(b).hexdigest())
                elif k in ("N", "ADR", "ORG", "NOTE", "BDAY", "X-BDAY"):
                    # a birthday that is not a date in 3.0 is kept as X-BDAY
                    k = "BDAY" if k == "X-BDAY" else k
                    s = structured(v)
                    if k == "BDAY":  # compare the digits; 3.0 writes "--MMDD" as 1604-MM-DD
                        s = re.sub(r"\D", "", s)
                        s = s[4:] if s.startswith("1604") else s
                    # vobject reads a 2.1 value continued after a trailing backslash as
                    # the literal text "\\eof": nothing any reader could reproduce
                    if s and "\ufffd" not in s and "\\eof" not in s: f[k].add(s)
    except Exception as e:
        if strict: raise
        print(f"(oracle stopped in {path}: {type(e).__name__})", file=sys.stderr)
    return n, f


def from_csv(path):
    """As contacts_check.py, but with the file's own delimiter and charset: the shared script
    reads every CSV as UTF-8 with commas, so a `;`-separated or Windows-1252 export gives it
    'e-mails' such as 'peter;pan;peter.pan@ecologic.eu' or 'wei\ufffd' that no correct reader
    produces."""
    f = {k: set() for k in ("FN", "TEL", "EMAIL", "PHOTO", "N", "ADR", "ORG", "NOTE", "BDAY")}
    raw = open(path, "rb").read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", "replace")
    first = text.split("\n", 1)[0]
    delim = max([",", ";", "\t"], key=first.count)
    import io
    with io.StringIO(text, newline="") as fh:
        for row in csv.DictReader(fh, delimiter=delim):
            for k, v in row.items():
                if not k or not v: continue
                for part in v.split(":::"):
                    if "mail" in k.lower() and "@" in part: f["EMAIL"].add(part.strip().lower())
                    elif "phone" in k.lower() and len(digits(part)) >= 6: f["TEL"].add(digits(part))
    return f


def main():
    args = sys.argv[1:]
    extended = args and args[0] == "--extended"
    if extended: args = args[1:]
    out, inputs = args[0], args[1:]
    raw = open(out, "rb").read()
    text = raw.decode("utf-8", "replace")
    if b"VERSION:4.0" in raw:
        # vobject cuts a 4.0 data: URI at its comma; hand it the bytes as 3.0 base64 instead
        text = re.sub(r"(?m)^((?:[-A-Za-z0-9]+\.)?PHOTO[^:\r\n]*):data:[^,\r\n]*;base64,",
                      r"\1;ENCODING=b:", text)
    try:
        # QP soft breaks exist only in 2.1 output, where vobject needs allowQP to read them
        raw.decode("utf-8")  # strictly UTF-8
        n_out, o = facts(text, out, strict=True, allow_qp=b"VERSION:2.1" in raw)
    except Exception as e:
        print(f"FAILS: vobject cannot parse our output: {type(e).__name__}: {e}"); return 1
    if raw and (b"\r\n" not in raw or re.search(rb"(?<!\r)\n", raw)):
        print("FAILS: output lines are not all CRLF"); return 1
    if any(len(l) > 75 for l in raw.split(b"\r\n")):
        print("FAILS: output has lines over 75 octets"); return 1
    if b"QUOTED-PRINTABLE" in raw.upper() and b"VERSION:2.1" not in raw:
        print("FAILS: QP in a 3.0/4.0 output"); return 1
    keys = ["FN", "TEL", "EMAIL", "PHOTO"] + (["N", "ADR", "ORG", "NOTE", "BDAY"] if extended else [])
    miss = []
    for p in inputs:
        name = p.split("/")[-1]
        f = from_csv(p) if p.lower().endswith(".csv") else facts(decode_input(open(p, "rb").read()), p)[1]
        for k in keys:
            miss += [f"{k} {x!r} from {name}" for x in sorted(f[k] - o[k])]
    if miss:
        print(f"FAILS: {len(miss)} items lost: " + "; ".join(miss[:6])); return 1
    print(f"OK: {n_out} cards; every {'/'.join(keys)} vobject reads from {len(inputs)} inputs is there")
    return 0


sys.exit(main())
