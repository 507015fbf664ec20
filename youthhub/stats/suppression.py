"""Small numbers hidden for a whole page at once (the rule: docs/privacy.md § Statistics).

A page is a set of numbers (*nodes*: every cell and every total of every table) tied by exact
sums (*relations*: a whole and its parts). The same number shown in two tables is one node, so
"the contacts" is one node however many tables end in it; a table of roles asked for ends in
the cell "a role" of the table of whom youth asked for; the waiting-time table ends in
"answered" = talked + called drop-in tickets.

`hide` decides which nodes are hidden. It starts with every count below THRESHOLD and then
plays the reader: what can be worked out from the shown numbers with the relations
(`Knowledge`), and hides one more shown number wherever that gives something away, until
nothing does:

- a hidden number that can be worked out must be 0 or at least THRESHOLD;
- where the whole of a relation is known, its unknown parts add up to 0 or at least THRESHOLD;
- where the whole is unknown, its known parts leave at least THRESHOLD of it unaccounted (or
  none are known), so they give no small upper bound to its siblings.

Derived figures (medians, means, rates) are shown only when the shown numbers already decide
them (`Knowledge.decides_quantile`, `Knowledge.decides_mean`), so they add nothing.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

THRESHOLD = 5  # counts below this are shown as "<5"


@dataclass(frozen=True)
class Relation:
    """whole = sum(parts), exactly, for every possible data."""

    whole: str
    parts: tuple[str, ...]

    @property
    def members(self) -> tuple[str, ...]:
        return (self.whole, *self.parts)


class Knowledge:
    """What a reader of the page can work out: the shown nodes, and every node that follows
    from them through a relation (one unknown left, or unknown parts of a known whole that can
    only be zero). `derived_by` remembers the relation that gave each worked-out node."""

    def __init__(self, values: dict[str, int], relations: Sequence[Relation], hidden: set[str]):
        self.values = values
        self.relations = relations
        self.hidden = hidden
        self.known = {node for node in values if node not in hidden}
        self.derived_by: dict[str, Relation] = {}
        changed = True
        while changed:
            changed = False
            for relation in relations:
                unknown = [m for m in relation.members if m not in self.known]
                if not unknown:
                    continue
                if len(unknown) == 1 or (
                    relation.whole in self.known and not sum(values[m] for m in unknown)
                ):
                    for node in unknown:
                        self.known.add(node)
                        self.derived_by[node] = relation
                    changed = True

    def unknown_parts(self, relation: Relation) -> list[str]:
        return [p for p in relation.parts if p not in self.known]

    def leak(self) -> Relation | str | None:
        """The first relation or worked-out node that gives a small number away, or None."""
        for node in self.derived_by:
            if 0 < self.values[node] < THRESHOLD:
                return node
        for relation in self.relations:
            unknown = self.unknown_parts(relation)
            if relation.whole in self.known:
                if 0 < sum(self.values[p] for p in unknown) < THRESHOLD:
                    return relation
            else:
                known = sum(self.values[p] for p in relation.parts if p in self.known)
                if known and self.values[relation.whole] - known < THRESHOLD:
                    return relation
        return None

    def sources(self, nodes: Iterable[str], seen: set[str] | None = None) -> list[str]:
        """The shown nodes that the given nodes are, or are worked out from."""
        seen = set() if seen is None else seen
        found = []
        for node in nodes:
            if node in seen:
                continue
            seen.add(node)
            if node not in self.hidden:
                found.append(node)
            elif node in self.derived_by:
                found += self.sources(self.derived_by[node].members, seen)
        return found

    def upper_bound(self, node: str) -> int | None:
        """The reader's bound on an unknown node: a known whole minus its other known parts;
        None when nothing bounds it."""
        if node in self.known:
            return self.values[node]
        bounds = [
            self.values[r.whole] - sum(self.values[p] for p in r.parts if p in self.known)
            for r in self.relations
            if node in r.parts and r.whole in self.known
        ]
        return min(bounds) if bounds else None

    # -- derived figures ---------------------------------------------------------------------

    def decides_quantile(self, whole: str, cells: Sequence[str], q: float) -> int | None:
        """The index of the bucket (in `cells`, in order) that holds the q-quantile, when every
        count the reader cannot rule out puts it in the same bucket; otherwise None."""
        known = [self.values[c] if c in self.known else 0 for c in cells]
        unknown = [i for i, c in enumerate(cells) if c not in self.known]
        if not unknown:
            candidates = [known]
        else:
            top = self.upper_bound(whole)
            if top is None:
                return None
            extra_max = top - sum(known)
            if whole in self.known:  # the unknown cells hold exactly this many
                extras = [extra_max]
            else:
                extras = [0, extra_max]
            candidates = []
            for extra in extras:
                for at in (unknown[0], unknown[-1]):
                    shape = list(known)
                    shape[at] += extra
                    candidates.append(shape)
        answers = {_quantile_index(shape, q) for shape in candidates}
        if len(answers) == 1 and None not in answers:
            return answers.pop()
        return None

    def decides_mean(self, whole: str, cells: Sequence[str]) -> bool:
        """Whether a mean over the cells follows from what is shown: the total is known and
        every unknown cell can only be zero."""
        return whole in self.known and not sum(self.values[c] for c in cells if c not in self.known)


def _quantile_index(shape: list[int], q: float) -> int | None:
    total = sum(shape)
    if total < THRESHOLD:
        return None
    running = 0
    for index, n in enumerate(shape):
        running += n
        if running >= q * total:
            return index
    return len(shape) - 1


def hide(
    values: dict[str, int], relations: Sequence[Relation], always_hidden: Iterable[str] = ()
) -> Knowledge:
    """Decide the hidden nodes of a page; returns the reader's knowledge of the final page
    (`.hidden` is the set to show as "<5")."""
    hidden = {node for node, value in values.items() if value < THRESHOLD}
    hidden |= set(always_hidden)
    while True:
        knowledge = Knowledge(values, relations, hidden)
        leak = knowledge.leak()
        if leak is None:
            return knowledge
        if isinstance(leak, str):
            candidates = [
                n for n in knowledge.sources(knowledge.derived_by[leak].members) if n != leak
            ]
        else:
            shown_parts = [p for p in leak.parts if p not in hidden]
            candidates = shown_parts or knowledge.sources(leak.members)
        if not candidates:  # cannot happen: something known always rests on a shown number
            return hide(values, relations, always_hidden=values)
        # Hide the smallest shown number that takes part (a part before its whole).
        hidden.add(min(candidates, key=lambda n: (values[n], n)))


def suppress(counts: dict[str, int]) -> tuple[dict[str, int | None], int | None]:
    """One table on its own: its cells (None when hidden) and its total."""
    values = {f"cell:{key}": n for key, n in counts.items()}
    values["total"] = sum(counts.values())
    knowledge = hide(values, [Relation("total", tuple(k for k in values if k != "total"))])
    shown = {key: (None if f"cell:{key}" in knowledge.hidden else n) for key, n in counts.items()}
    return shown, (None if "total" in knowledge.hidden else values["total"])
