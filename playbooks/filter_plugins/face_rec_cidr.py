"""face_rec_cidr_problems: what is wrong with a list of IPv4 CIDR ranges meant to let a few
people in (gce_ssh_source_ranges), as sentences; an empty list when nothing is.

    {{ ['198.51.100.0/24'] | face_rec_cidr_problems }}             -> []
    {{ ['0.0.0.0/1', '128.0.0.0/1'] | face_rec_cidr_problems }}    -> ['0.0.0.0/1 is wider than /8', ...,
                                                                       'together they cover the whole internet']

Refused, one sentence each: an entry that is not text; a malformed range (an octet above 255,
a prefix above /32 or written as a netmask, IPv6); a range with host bits set (198.51.100.7/24: say 198.51.100.0/24,
or 198.51.100.7/32 for one address, rather than have Google widen it silently); a range wider
than /8; ranges that together cover the whole internet. A bare address counts as its /32.
Used by playbooks/tasks/gce_inputs.yml (filter_plugins next to the playbooks load it).
"""

import ipaddress

WIDEST_PREFIX = 8


def face_rec_cidr_problems(ranges):
    if isinstance(ranges, (str, bytes)) or not isinstance(ranges, (list, tuple)):
        return ["the ranges must be a list"]
    problems = []
    networks = []
    for entry in ranges:
        if not isinstance(entry, str):
            problems.append(f"{entry!r} is not a CIDR range")
            continue
        address, slash, prefix = entry.strip().partition("/")
        if slash and not prefix.isdigit():
            problems.append(f"{entry} has a bad prefix length (0-32)")  # a netmask, or nothing
            continue
        try:
            network = ipaddress.IPv4Network(entry.strip(), strict=True)
        except ipaddress.NetmaskValueError:
            problems.append(f"{entry} has a bad prefix length (0-32)")
            continue
        except ValueError as error:
            if "host bits set" in str(error):
                loose = ipaddress.IPv4Network(entry.strip(), strict=False)
                problems.append(f"{entry} has host bits set (did you mean {loose} or {address}/32?)")
            else:
                problems.append(f"{entry} is not an IPv4 CIDR range")
            continue
        if network.prefixlen < WIDEST_PREFIX:
            problems.append(f"{entry} is wider than /{WIDEST_PREFIX}")
        networks.append(network)
    if any(n == ipaddress.IPv4Network("0.0.0.0/0") for n in ipaddress.collapse_addresses(networks)):
        problems.append("together they cover the whole internet")
    return problems


class FilterModule:
    def filters(self):
        return {"face_rec_cidr_problems": face_rec_cidr_problems}
