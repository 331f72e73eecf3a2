"""Questions answered from the catalogs and astropy, not generated: the router.

``DirectAnswers.answer`` takes a question (and the objects a chat is about) and returns a
``Composed`` answer, or None to leave the question to the language model. It handles:

- catalog questions read as queries (``catalog_parse``: list, count, brightest, largest,
  "is there ...", "is NGC 6960 a supernova remnant?"), answered from the rows (``catalog_answer``);
- a named star's distance, parallax, colour or spectral type (``stars``: KStars table);
- derived facts (``derived``): how far an object is (from its redshift, or a star's
  parallax), its physical size, and where it stands in the sky from a place at a time;
- overviews ("Tell me about M92.") and comparisons of two or three objects (``overview``).

Every sentence cites the numbered sources it came from; a derived source says how it was
computed. The assistant streams the sentences as the answer's pieces.
"""

from __future__ import annotations

import re

import astropy.units as u

from astrovlm.assistant.catalog_answer import Composed, compose_catalog_answer, verdict_answer
from astrovlm.assistant.catalog_parse import parse_catalog_question
from astrovlm.assistant.catalog_query import CatalogTables
from astrovlm.assistant.derived import Derived, physical_size, redshift_distance, sky_position
from astrovlm.assistant.context import _literature, is_sky_culture, source_rank
from astrovlm.assistant.explain import concept_term, explanation_sentences, removed_instructions, term_forms
from astrovlm.assistant.mentions import find_names
from astrovlm.assistant.overview import (
    class_definition, comparison_sentences, overview_sentences, wants_comparison, wants_overview)
from astrovlm.assistant.prompts import Source
from astrovlm.assistant.stars import parallax_distance, star_row, star_source
from astrovlm.assistant.statements import as_question, judge, split_subject, statement_of, verdict_sentences
from astrovlm.data.cards import article, position_text
from astrovlm.errors import BadArgumentError

_DISTANCE = re.compile(r"\bhow far\b|\bdistance\b|\bfar away\b|\blight[- ]?years? (?:away|from)\b|"
                       r"\bhow many (?:light[- ]?years|parsecs|pc|mpc)\b", re.I)
_SIZE = re.compile(r"\b(?:how (?:big|large|wide)|physical size|actual size|diameter|how many "
                   r"(?:light[- ]?years|kpc|parsecs) (?:across|wide))\b", re.I)
_SKY = re.compile(r"\baltitude\b|\bazimuth\b|\babove the horizon\b|\bin the sky\b|\bvisible from\b|"
                  r"\bwhere (?:is|will)\b.*\bfrom\b.*\b(?:on|at)\b", re.I)
_STAR_FACTS = re.compile(r"\bparallax\b|\bspectral (?:type|class)\b|\bb-v\b|\bcolou?r\b|\btell me about\b|"
                         r"\bdescribe\b", re.I)
_PRONOUN = re.compile(r"\b(?:it|its|it's|this|that|they|them|these|those|there)\b", re.I)
_GALAXY_TYPE = re.compile(r"^\s*what (?:type|kind|sort|class) of galaxy is\b", re.I)
_PLACE = re.compile(r"\bfrom\s+(.+?)(?=\s+(?:on|at)\s+(?:\d|now\b)|\s+(?:on|at|now|right now)\b|[?]|$)", re.I)
_TIME = re.compile(r"\b(?:on|at)\s+(.+?)\s*[?.!]*\s*$|\b(now)\b", re.I)
_POSITION = re.compile(r"^\s*(?:RA\s*)?([+-]?\d+(?:\.\d+)?)\s*(?:deg|°)?\s*,?\s*(?:Dec\s*)?([+-]?\d+(?:\.\d+)?)"
                       r"\s*(?:deg|°)?\s*$", re.I)


def derived_source(d: Derived, obj, n: int) -> Source:
    oid = getattr(obj, "object_id", None)
    return Source(f"derived:{d.kind}:{oid}:{n}", f"{d.kind.replace('_', ' ')} of {getattr(obj, 'name', 'the object')}",
                  "derived", d.text, oid, d.credit, None, {"values": d.values})


class DirectAnswers:
    """Routes a question to the catalog query, the star facts or the derived facts."""

    def __init__(self, context, dataset=None):
        self.context = context           # the assistant's ContextBuilder (resolver, cards)
        self.tables = CatalogTables.of_dataset(dataset)
        self._stars = None
        self._title_map = None

    @property
    def resolver(self):
        return self.context.resolver

    def stars(self):
        if self._stars is None and self.tables is not None and (self.tables.dir / "stars.parquet").exists():
            self._stars = self.tables.frame("stars")
        return self._stars

    # ------------------------------------------------------------------ routing
    def answer(self, question: str, subjects=()) -> Composed | None:
        claimed = statement_of(question)          # "Is it true that M13 is in Hercules?"
        asked = as_question(claimed) if claimed else None   # "Is M13 in Hercules?"
        q = parse_catalog_question(question)
        if q is None and asked:
            q = parse_catalog_question(asked)
            q = q if q is not None and q.kind == "verdict" else None
        if q is not None and self.tables is not None:
            got = self._catalog(question, q)
            if got is not None:
                return got
        where = _IN_CONSTELLATION.match(asked or question)
        if where and not where.group("name").lower().startswith(("there ", "any ")):
            got = self._constellation_verdict(where.group("name"), where.group("place"))
            if got is not None:
                return got
        galaxy_type = _GALAXY_TYPE.match(question)
        if galaxy_type:
            return self._galaxy_type(question)
        if wants_comparison(question):
            got = self._comparison(question)
            if got is not None:
                return got
        if wants_overview(question):
            got = self._overview(question, subjects)
            if got is not None:
                return got
        term = concept_term(question)
        if term is not None:
            got = self._explanation(question, term)
            if got is not None:
                return got
        if claimed is not None:
            got = self._statement(question, claimed)
            if got is not None:
                return got
        wants = [k for k, rx in (("sky", _SKY), ("size", _SIZE), ("distance", _DISTANCE)) if rx.search(question)]
        star_facts = bool(_STAR_FACTS.search(question))
        if not wants and not star_facts:
            return None
        objects, notes, readings = self.context.read_names(question)
        if notes:
            return None              # an unknown name: the ordinary path reports it with close names
        if not objects and _PRONOUN.search(question):
            objects = list(subjects)     # "And how far is it?": the chat's object
        if not objects:
            return None
        obj = objects[0]
        if star_facts and not wants and star_row(self.stars(), obj) is None:
            return None              # a star fact about a non-star: the card answers it
        composed = self._derived(question, obj, wants)
        composed.sentences = readings + composed.sentences
        return composed

    def _overview(self, question: str, subjects=()) -> Composed | None:
        """"Tell me about M92.": every fact of the card, and what such an object is from a
        literature passage that defines its kind (a named star takes the star path)."""
        objects, notes, readings = self.context.read_names(question)
        if notes:
            return None
        if not objects and _PRONOUN.search(question):
            objects = list(subjects)
        if len(objects) != 1 or star_row(self.stars(), objects[0]) is not None:
            return None
        obj = objects[0]
        sources = [self.context.card_source(obj)]
        position = position_text(obj.ra_deg, obj.dec_deg) if obj.ra_deg is not None and obj.dec_deg is not None else None
        what_it_is, literature = None, None
        kind = obj.otype or obj.coarse_class
        if kind and self.context.retriever is not None:
            found = class_definition(self.context._literature_sources(
                f"What is {article(kind)} {kind}?", {sources[0].id}, k=4, min_score=None), obj)
            if found is not None:
                sources.append(found[0])
                what_it_is, literature = found[1], 2
        sentences = overview_sentences(obj, 1, literature, what_it_is, position)
        return Composed(readings + sentences, sources, [obj])

    def _constellation_verdict(self, name: str, place: str) -> Composed | None:
        """"Is M13 in Hercules?": yes or no from the object's card, first."""
        from astrovlm.assistant.constellations import constellation_name, find_constellations

        found = find_constellations(place.strip())
        if not found or found[0][1] != 0 or found[0][2] != len(place.strip()):
            return None
        obj = self.context.resolve(name.strip())
        if obj is None or not obj.constellation:
            return None
        asked = constellation_name(found[0][0])
        if asked.lower() == obj.constellation.lower():
            sentence = f"Yes: {obj.name} is in {obj.constellation} [1]."
        else:
            sentence = f"No: {obj.name} is in {obj.constellation}, not {asked} [1]."
        return Composed([sentence], [self.context.card_source(obj)], [obj])

    def _explanation(self, question: str, term: str) -> Composed | None:
        """"What is a pulsar?": the definitions of the term in the literature, quoted and
        cited (``explain``); None for a question about an object ("What is M31?") or a term
        no passage names."""
        if not self._about_no_object(question):
            return None
        passages = self._passages_on(term, question)
        sentences, _ = explanation_sentences(term, passages, prefer=_built_in)
        if not sentences:
            return None
        return Composed(sentences, passages, [], _removed_note(passages))

    def _statement(self, question: str, statement: str) -> Composed | None:
        """"Is it true that globular clusters are young?": a verdict from the definitions of
        the statement's subject (``statements``), then the evidence; None for a statement
        about a named object, or whose subject no passage defines."""
        if not self._about_no_object(question):
            return None
        titles = self._titles()
        found = split_subject(statement, titles)
        if found is None:
            return None
        subject, claim = found
        passages = self._passages_on(subject, f"What is {subject}?")
        verdict, evidence, _ = judge(subject, claim, passages, prefer=_built_in)
        if not evidence:
            return None
        return Composed(verdict_sentences(verdict, subject, evidence), passages, [], _removed_note(passages))

    def _about_no_object(self, question: str) -> bool:
        """A general question the literature can answer: there is literature to retrieve and
        the question names no object (those go to the card)."""
        return self.context.retriever is not None and not self.context.read_names(question)[0]

    def _passages_on(self, term: str, question: str) -> list[Source]:
        """The passages an explanation reads, in context order: those titled with the term
        first, then the hybrid retrieval's for the question; built-in literature before a
        user's own passages (``source_rank``), as in every context."""
        defining = self._defining(term)
        ranked = self.context._literature_sources(question, {s.id for s in defining}, k=6, min_score=None)
        return sorted((defining[:3] + ranked)[:MAX_EXPLAIN_SOURCES], key=source_rank)

    def _defining(self, term: str) -> list[Source]:
        """The passages whose title is the term (or its plural or singular), as sources."""
        titles, seen, out = self._titles(), set(), []
        for form in term_forms(term):
            for p in titles.get(form, []):
                if p.passage_id not in seen:
                    seen.add(p.passage_id)
                    out.append(_literature(p, 1.0))
        return out

    def _titles(self) -> dict:
        """Literature passages by their title's lower-case form (the definitions' headwords)."""
        if self._title_map is None:
            self._title_map = {}
            for p in self.context._passages.values():
                if p.kind == "literature" and p.title and self.context._allowed(p) and not is_sky_culture(p):
                    self._title_map.setdefault(" ".join(p.title.lower().split()), []).append(p)
        return self._title_map

    def _comparison(self, question: str) -> Composed | None:
        """"Compare M49 and M51.": two or three objects' facts side by side, and what differs."""
        objects, notes, readings = self.context.read_names(question)
        if notes or not 2 <= len(objects) <= 3:
            return None
        sources = [self.context.card_source(o) for o in objects]
        sentences = comparison_sentences(objects, list(range(1, len(objects) + 1)))
        return Composed(readings + sentences, sources, list(objects))

    def _galaxy_type(self, question: str) -> Composed | None:
        """"What type of galaxy is Triangulum?": the card's type and Hubble type, first."""
        objects, notes, readings = self.context.read_names(question)
        if notes or len(objects) != 1 or objects[0].coarse_class != "galaxy":
            return None
        obj = objects[0]
        kind = obj.otype + (f" of Hubble type {obj.hubble_type}" if obj.hubble_type else "")
        return Composed(readings + [f"{obj.name} is {article(kind)} {kind} [1]."], [self.context.card_source(obj)], [obj])

    def _catalog(self, question: str, q) -> Composed | None:
        if q.kind == "verdict":
            obj = self.context.resolve(q.subject)
            if obj is None:
                got = self.resolver.head_object(q.subject.split()[-1]) if hasattr(self.resolver, "head_object") \
                    and len(q.subject.split()) <= 2 else None
                obj = got[0] if got else None
                reading = [f"I took '{q.subject}' to mean {obj.name}, the {got[1]}."] if got else []
            else:
                reading = []
            if obj is None:
                return None
            composed = verdict_answer(obj, self.context.card_source(obj), self.tables, q)
            composed.sentences = reading + composed.sentences
            return composed
        if "unknown_place" in q.words:
            from astrovlm.assistant.constellations import closest_constellations

            word = q.words["unknown_place"]
            return Composed([f"No constellation is called '{word}'; the closest spellings are "
                             f"{', '.join(closest_constellations(word))}. Ask again with one of them."], [])
        centre, exclude = None, ()
        if q.center:
            m = _POSITION.match(q.center)
            if m:
                centre = (float(m.group(1)), float(m.group(2)))
            else:
                obj = self._resolve_centre(q)
                if obj is None or obj.ra_deg is None:
                    close = self.context._suggest(q.center) if obj is None else []
                    raise BadArgumentError(f"the centre '{q.center}' is not a known object or an 'RA, Dec' "
                                           "position in degrees" + (f"; close names: {', '.join(close)}"
                                                                    if close else ""), field="question")
                centre, exclude = (obj.ra_deg, obj.dec_deg), (obj.object_id, obj.name)
        else:
            # "How many stars are in the Pleiades?" asks about an object, not the catalog.
            if any(not _is_constellation(n) for n in find_names(question, self.resolver)):
                return None
        return compose_catalog_answer(self.tables, q, centre, self.resolver, exclude)

    def _resolve_centre(self, q):
        """The cone's centre object; words after the name are dropped one by one ("M31 now")."""
        words = q.center.split()
        for n in range(len(words), 0, -1):
            obj = self.context.resolve(" ".join(words[:n]))
            if obj is not None:
                q.center = " ".join(words[:n])
                return obj
        return None

    # ------------------------------------------------------------------ derived facts
    def _derived(self, question: str, obj, wants: list[str]) -> Composed:
        star = star_row(self.stars(), obj)
        sources: list[Source] = [star_source(obj, star) if star is not None else self.context.card_source(obj)]
        sentences: list[str] = []
        if star is not None:
            sentences.append(self._star_sentence(obj, sources[0]))
        if "sky" in wants:
            place = _PLACE.search(question)
            rest = question[place.end():] if place else question
            when = _TIME.search(rest)
            if place is None:
                raise BadArgumentError("say where you observe from ('from 51.48, -0.0' in degrees "
                                       "or 'from greenwich')", field="place")
            if when is None:
                raise BadArgumentError("say when ('on 2026-03-01 21:30 UTC', or 'now')", field="time")
            d = sky_position(obj.ra_deg, obj.dec_deg, place.group(1), when.group(1) or when.group(2), obj.name)
            sources.append(derived_source(d, obj, len(sources) + 1))
            v = d.values
            sentences.append(f"Seen from {place.group(1).strip()} at {v['time_utc'][:16].replace('T', ' ')} UTC, "
                             f"{obj.name} is at "
                             f"altitude {v['alt_deg']:.1f} deg, azimuth {v['az_deg']:.1f} deg "
                             f"({'above' if v['alt_deg'] > 0 else 'below'} the horizon) [{len(sources)}].")
        distance = None
        if ("distance" in wants or "size" in wants) and star is None:
            distance = self._redshift_distance(obj, sources, sentences)
        if "size" in wants and star is None:
            if distance is not None and obj.major_axis_arcmin:
                d = physical_size(obj.major_axis_arcmin, distance, obj.name, "luminosity distance from the redshift")
                sources.append(derived_source(d, obj, len(sources) + 1))
                sentences.append(f"At that distance its {obj.major_axis_arcmin:g} arcmin [1] is about "
                                 f"{d.values['size_kpc']:.3g} kpc ({_round(d.values['size_ly'])} light years) "
                                 f"across [{len(sources)}].")
            elif not obj.major_axis_arcmin:
                sentences.append(f"The catalog gives no angular size for {obj.name} [1], so no physical size.")
        if "distance" in wants and star is not None and parallax_distance(star.get("parallax_mas")) is None:
            sentences.append(f"The KStars table gives no positive parallax for {obj.name} [1], so no distance.")
        return Composed(sentences, sources, [obj])

    @staticmethod
    def _star_sentence(obj, src: Source) -> str:
        x = src.extra
        bits = [f"{obj.name} is a star" + (f" of spectral type {x['spectral_type']}" if x.get("spectral_type") else "")
                + f" in {x['constellation']}"]
        if x.get("v_mag") is not None:
            bits.append(f"V magnitude {x['v_mag']:g}")
        if x.get("b_v") is not None:
            bits.append(f"B-V {x['b_v']:+.2f}")
        text = ", ".join(bits) + " [1]."
        if x.get("distance_pc") is not None:
            text += (f" Its parallax of {x['parallax_mas']:g} mas (KStars stars.dat) puts it at "
                     f"{_round(x['distance_pc'])} pc, or {_round(x['distance_ly'])} light years [1].")
        return text

    def _redshift_distance(self, obj, sources, sentences):
        """Add the redshift distance's source and sentences; the luminosity distance, or None."""
        if obj.redshift is None:
            sentences.append(f"The catalog gives no redshift for {obj.name} [1], so no distance can be "
                             "computed from one.")
            return None
        if obj.coarse_class not in ("galaxy", "quasar"):
            # A cluster or nebula of the Milky Way: its redshift is its own line-of-sight motion.
            sentences.append(f"{obj.name} is {article(obj.otype)} {obj.otype} in our Galaxy [1]: its catalog redshift "
                             f"z = {obj.redshift:g} measures its own motion along the line of sight, not the "
                             "expansion of the Universe, so it gives no distance.")
            return None
        d = redshift_distance(obj.redshift, obj.name)
        sources.append(derived_source(d, obj, len(sources) + 1))
        n = len(sources)
        v = d.values
        if "luminosity_distance_mpc" not in v:
            sentences.append(f"{obj.name}'s catalog redshift z = {obj.redshift:g} [1] is a blueshift: it is "
                             f"approaching us, so no distance follows from the redshift [{n}].")
            return None
        text = (f"{obj.name}'s catalog redshift is z = {obj.redshift:g} [1]; with the Planck18 cosmology that "
                f"is a luminosity distance of {v['luminosity_distance_mpc']:.3g} Mpc (about "
                f"{v['luminosity_distance_mpc'] * 3.26156:.3g} million light years) [{n}].")
        if v["peculiar_caution"]:
            text += (" At so small a redshift the object's own (peculiar) motion is a large part of it, so treat this "
                     f"distance as rough (tens of per cent) [{n}].")
        sentences.append(text)
        return v["luminosity_distance_mpc"] * u.Mpc


MAX_EXPLAIN_SOURCES = 8
_IN_CONSTELLATION = re.compile(r"^\s*(?:is|are)\s+(?P<name>.+?)\s+(?:located\s+|found\s+|seen\s+)?in\s+"
                               r"(?:the\s+constellation\s+(?:of\s+)?)?(?P<place>[A-Za-z][A-Za-z ]+?)\s*[?.!]*\s*$",
                               re.I)


def _built_in(src: Source) -> bool:
    """The built-in literature (not a user's own passage): quoted first."""
    return source_rank(src) < 2


def _removed_note(passages: list[Source]) -> list[str]:
    n = removed_instructions(passages)
    return [f"{n} instruction-like sentence(s) in the retrieved text were removed"] if n else []


def _is_constellation(name: str) -> bool:
    """"Leo" (also a name in the resolver) is the question's place, not its subject."""
    from astrovlm.assistant.constellations import find_constellations

    found = find_constellations(name)
    return bool(found) and found[0][1] == 0 and found[0][2] == len(name)



def _round(value: float) -> str:
    """Three significant figures, written out: 1e+03 reads badly in a sentence."""
    return f"{float(f'{value:.3g}'):,.0f}" if value >= 100 else f"{value:.3g}"
