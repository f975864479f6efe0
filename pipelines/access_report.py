"""`lupa sar (--customer-id ID | --personal-id -)`: the right of access (GDPR Art. 15).

Writes one machine-readable JSON file and one self-contained HTML file per customer, in the
customer's language (fi/sv/en), into an owner-only directory (0700, files 0600). They hold
everything the restricted warehouse and the analytics zone keep about that one customer, with the
source of each value, plus the purposes, recipients and retention periods from
`data_contracts/processing_register.yaml`. Nothing about any other customer is included: the only
figures drawn from other customers are aggregates (population median, segment typical values),
shown only for groups of at least `MIN_GROUP_FOR_STATISTICS` customers.

A customer who has been erased gets a report of what the erasure kept, and why: the date of the
erasure, the invoices kept restricted under the Accounting Act (each with the last day it is kept,
`RetentionPolicy.invoice_kept_until`, after which the `retention` asset deletes it) and the
suppression record that keeps them from being loaded again. Nothing else is held, so nothing else
is shown: a full report would list empty sections and consent states that no longer exist. An
erasure that was interrupted gets no report until `lupa erase` has finished it: until then other
zones may still hold the customer.

The personal identity code is read from standard input, never from the command line (shell
history, `ps`). It is never printed, logged or written anywhere except into the report itself,
which is the customer's own data. The command prints only the output paths and counts.

Reads are short read-only DuckDB connections (a read-only connection still blocks a writer), and
nothing goes through Dagster: no run config, no event log.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import html
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import yaml

from assets.privacy.erasure import HeldAfterErasure, held_after_erasure
from assets.storage.zones import LupaStorage, connect, query, table_exists
from data_contracts.identifiers import personal_id_problem
from data_contracts.policy import CHANNELS, MarketingPolicy, RetentionPeriod, load_policy
from data_contracts.profiling import ProfilingRules, candidates, split_population

LANGS = ("fi", "sv", "en")
HELSINKI = ZoneInfo("Europe/Helsinki")
REGISTER_FILE = "processing_register.yaml"
#: Aggregates over other customers (a segment's typical value, the population median) are shown only
#: for groups at least this large, so that no figure can describe one other person.
MIN_GROUP_FOR_STATISTICS = 5
#: How many features the explanation names as the ones that set the customer apart.
TOP_FEATURES = 3
PAYMENT_FEATURES = ("invoices_12m", "late_share", "mean_days_late", "reminders_12m", "collections_12m")

EXIT_OK, EXIT_UNKNOWN, EXIT_USAGE = 0, 1, 2


class AccessReportError(Exception):
    """The report cannot be made (no warehouse, malformed input); the message holds no personal data."""


# =================================================================================================
# the processing register (maintained text, fi/sv/en)
# =================================================================================================
def default_register_path() -> Path:
    return Path(str(resources.files("data_contracts").joinpath(REGISTER_FILE)))


def _require_langs(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or any(
        not isinstance(value.get(lang), str) or not value[lang].strip() for lang in LANGS
    ):
        raise AccessReportError(f"{REGISTER_FILE}: {where} needs non-empty text in {', '.join(LANGS)}")
    return {lang: value[lang] for lang in LANGS}


def load_processing_register(path: str | Path | None = None, policy: MarketingPolicy | None = None) -> dict[str, Any]:
    """Load and check the register; resolve every `policy_key` retention to the policy's period.

    Returns the register with each retention entry carrying `period` (a dict with one of
    years/months/days) and `period_source` (`marketing_policy.yaml` or the register itself).
    """
    p = Path(path) if path is not None else default_register_path()
    data = yaml.safe_load(p.read_text(encoding="utf-8"))
    policy = policy or load_policy()
    if not isinstance(data, dict):
        raise AccessReportError(f"{REGISTER_FILE}: the top level must be a mapping")
    for key in ("version", "controller", "purposes", "recipients", "sources", "retention", "rights"):
        if key not in data:
            raise AccessReportError(f"{REGISTER_FILE}: missing section {key!r}")
    _require_langs(data["controller"].get("name"), "controller.name")
    for section, fields in (
        ("purposes", ("name", "legal_basis", "description")),
        ("recipients", ("name", "description")),
        ("sources", ("name",)),
    ):
        for i, item in enumerate(data[section]):
            if not item.get("id"):
                raise AccessReportError(f"{REGISTER_FILE}: {section}[{i}] has no id")
            for f in fields:
                item[f] = _require_langs(item.get(f), f"{section}.{item['id']}.{f}")
    policy_retention = policy.retention.model_dump(exclude_none=True)
    for item in data["retention"]:
        rid = item.get("id", "?")
        item["name"] = _require_langs(item.get("name"), f"retention.{rid}.name")
        if "after" in item:
            item["after"] = _require_langs(item["after"], f"retention.{rid}.after")
        if ("policy_key" in item) == ("period" in item):
            raise AccessReportError(f"{REGISTER_FILE}: retention.{rid} needs exactly one of policy_key or period")
        if "policy_key" in item:
            if item["policy_key"] not in policy_retention:
                raise AccessReportError(
                    f"{REGISTER_FILE}: retention.{rid}.policy_key {item['policy_key']!r} is not in the policy's retention section"
                )
            period = getattr(policy.retention, item["policy_key"])
            item["period_source"] = f"marketing_policy.yaml retention.{item['policy_key']} (policy {policy.version})"
        else:
            period = RetentionPeriod.model_validate(item["period"])
            item["period_source"] = REGISTER_FILE
        item["period"] = period.model_dump(exclude_none=True)
    rights = data["rights"]
    if not isinstance(rights, dict) or any(not rights.get(lang) for lang in LANGS):
        raise AccessReportError(f"{REGISTER_FILE}: rights needs a list in {', '.join(LANGS)}")
    return data


# =================================================================================================
# texts (fi/sv/en)
# =================================================================================================
T: dict[str, dict[str, str]] = {
    "title": {
        "fi": "Rekisteriote: sinusta tallennetut tiedot",
        "sv": "Registerutdrag: uppgifter som sparats om dig",
        "en": "Access report: the data we hold about you",
    },
    "intro": {
        "fi": "Tämä ote kertoo EU:n yleisen tietosuoja-asetuksen 15 artiklan mukaisesti, mitä tietoja sinusta on tallennettu, mistä ne ovat peräisin ja miten niitä käsitellään.",
        "sv": "Detta utdrag visar enligt artikel 15 i dataskyddsförordningen vilka uppgifter som sparats om dig, varifrån de kommer och hur de behandlas.",
        "en": "Under Article 15 of the GDPR, this report shows the data we hold about you, where each piece comes from and how it is processed.",
    },
    "generated": {"fi": "Laadittu", "sv": "Upprättad", "en": "Generated"},
    "data_as_of": {"fi": "Tiedot päivältä", "sv": "Uppgifter per", "en": "Data as of"},
    "customer_id": {"fi": "Asiakasnumero", "sv": "Kundnummer", "en": "Customer number"},
    "h_identity": {
        "fi": "Henkilö- ja yhteystiedot",
        "sv": "Identitets- och kontaktuppgifter",
        "en": "Identity and contact data",
    },
    "h_contracts": {
        "fi": "Sopimukset ja käyttöpaikat",
        "sv": "Avtal och mätpunkter",
        "en": "Contracts and metering points",
    },
    "h_consumption": {
        "fi": "Sähkönkulutus kuukausittain",
        "sv": "Elförbrukning per månad",
        "en": "Electricity consumption per month",
    },
    "h_invoices": {
        "fi": "Laskut ja maksukäyttäytyminen",
        "sv": "Fakturor och betalningsbeteende",
        "en": "Invoices and payment behaviour",
    },
    "h_consents": {"fi": "Suostumukset ja kiellot", "sv": "Samtycken och förbud", "en": "Consents and objections"},
    "h_profiling": {
        "fi": "Profilointi ja asiakasryhmä",
        "sv": "Profilering och kundsegment",
        "en": "Profiling and customer segment",
    },
    "h_audiences": {
        "fi": "Markkinoinnin kohderyhmät",
        "sv": "Marknadsföringens målgrupper",
        "en": "Marketing audiences",
    },
    "h_contacts": {"fi": "Yhteydenottohistoria", "sv": "Kontakthistorik", "en": "Contact history"},
    "h_rejected": {"fi": "Hylätyt toimitusrivit", "sv": "Avvisade leveransrader", "en": "Rejected delivery records"},
    "h_processing": {
        "fi": "Käsittelyn tarkoitukset, vastaanottajat ja säilytysajat",
        "sv": "Ändamål, mottagare och lagringstider",
        "en": "Purposes, recipients and retention periods",
    },
    "h_rights": {"fi": "Oikeutesi", "sv": "Dina rättigheter", "en": "Your rights"},
    "h_purposes": {"fi": "Käsittelyn tarkoitukset", "sv": "Ändamål med behandlingen", "en": "Purposes of processing"},
    "h_recipients": {"fi": "Vastaanottajat", "sv": "Mottagare", "en": "Recipients"},
    "h_sources": {"fi": "Tietolähteet", "sv": "Källor", "en": "Sources"},
    "h_retention": {"fi": "Säilytysajat", "sv": "Lagringstider", "en": "Retention periods"},
    "h_events": {"fi": "Kaikki suostumustapahtumat", "sv": "Alla samtyckeshändelser", "en": "Every consent event"},
    "h_channel_effect": {
        "fi": "Mitä tämä tarkoittaa markkinoinnille kanavittain",
        "sv": "Vad detta betyder för marknadsföring per kanal",
        "en": "What this means for marketing, per channel",
    },
    "h_state": {
        "fi": "Voimassa oleva tila kanavittain",
        "sv": "Gällande status per kanal",
        "en": "Resulting state per channel",
    },
    "h_features": {
        "fi": "Mitkä tiedot ratkaisivat ryhmän",
        "sv": "Vilka uppgifter avgjorde segmentet",
        "en": "Which features placed you in the segment",
    },
    "h_history": {
        "fi": "Kohderyhmät, joissa olet tai olet ollut",
        "sv": "Målgrupper du är eller har varit med i",
        "en": "Audiences you are or were in",
    },
    "h_exclusions": {
        "fi": "Miksi et ole jossakin kohderyhmässä",
        "sv": "Varför du inte är med i en målgrupp",
        "en": "Why you are not in an audience",
    },
    "h_renewal": {"fi": "Jatkotarjoukset", "sv": "Förnyelseerbjudanden", "en": "Renewal offers"},
    "h_payment_features": {
        "fi": "Maksukäyttäytymisen tunnusluvut (12 kk)",
        "sv": "Nyckeltal för betalningsbeteende (12 mån)",
        "en": "Payment-behaviour features (12 months)",
    },
    "h_vtj": {
        "fi": "Väestötietojärjestelmän (VTJ) tiedot",
        "sv": "Uppgifter från befolkningsdatasystemet (BDS)",
        "en": "Population Information System (VTJ) record",
    },
    "none": {"fi": "Ei tietoja.", "sv": "Inga uppgifter.", "en": "None."},
    # columns
    "field": {"fi": "Tieto", "sv": "Uppgift", "en": "Data"},
    "value": {"fi": "Arvo", "sv": "Värde", "en": "Value"},
    "source": {"fi": "Lähde", "sv": "Källa", "en": "Source"},
    "note": {"fi": "Huomautus", "sv": "Anmärkning", "en": "Note"},
    "contract_id": {"fi": "Sopimus", "sv": "Avtal", "en": "Contract"},
    "metering_point_id": {"fi": "Käyttöpaikka (GSRN)", "sv": "Mätpunkt (GSRN)", "en": "Metering point (GSRN)"},
    "product_code": {"fi": "Tuote", "sv": "Produkt", "en": "Product"},
    "contract_type": {"fi": "Sopimustyyppi", "sv": "Avtalstyp", "en": "Contract type"},
    "start_date": {"fi": "Alkaa", "sv": "Börjar", "en": "Start"},
    "end_date": {"fi": "Päättyy", "sv": "Slutar", "en": "End"},
    "site_type": {"fi": "Kohde", "sv": "Objekt", "en": "Site"},
    "heating": {"fi": "Lämmitys", "sv": "Uppvärmning", "en": "Heating"},
    "valid_from": {"fi": "Alkaen", "sv": "Från", "en": "From"},
    "valid_to": {"fi": "Asti", "sv": "Till", "en": "To"},
    "month": {"fi": "Kuukausi", "sv": "Månad", "en": "Month"},
    "kwh": {"fi": "kWh", "sv": "kWh", "en": "kWh"},
    "days_with_data": {"fi": "Päiviä", "sv": "Dagar", "en": "Days"},
    "readings_estimated": {"fi": "Arvioituja lukemia", "sv": "Uppskattade värden", "en": "Estimated readings"},
    "readings_missing": {"fi": "Puuttuvia lukemia", "sv": "Saknade värden", "en": "Missing readings"},
    "invoice_id": {"fi": "Lasku", "sv": "Faktura", "en": "Invoice"},
    "issued_on": {"fi": "Päiväys", "sv": "Datum", "en": "Issued"},
    "due_on": {"fi": "Eräpäivä", "sv": "Förfallodag", "en": "Due"},
    "amount_eur": {"fi": "Summa (€)", "sv": "Belopp (€)", "en": "Amount (€)"},
    "paid_on": {"fi": "Maksettu", "sv": "Betald", "en": "Paid"},
    "days_late": {"fi": "Myöhässä (pv)", "sv": "Försenad (dgr)", "en": "Days late"},
    "reminders": {"fi": "Muistutukset", "sv": "Påminnelser", "en": "Reminders"},
    "in_collection": {"fi": "Perinnässä", "sv": "Indrivning", "en": "In collection"},
    "event_id": {"fi": "Tapahtuma", "sv": "Händelse", "en": "Event"},
    "purpose": {"fi": "Tarkoitus", "sv": "Ändamål", "en": "Purpose"},
    "channel": {"fi": "Kanava", "sv": "Kanal", "en": "Channel"},
    "action": {"fi": "Toimenpide", "sv": "Åtgärd", "en": "Action"},
    "occurred_at": {"fi": "Ajankohta", "sv": "Tidpunkt", "en": "When"},
    "wording_version": {"fi": "Tekstin versio", "sv": "Textversion", "en": "Wording version"},
    "evidence_ref": {"fi": "Todiste", "sv": "Bevis", "en": "Evidence"},
    "state": {"fi": "Tila", "sv": "Status", "en": "State"},
    "legal_basis": {"fi": "Oikeusperuste", "sv": "Rättslig grund", "en": "Legal basis"},
    "feature": {"fi": "Tunnusluku", "sv": "Nyckeltal", "en": "Feature"},
    "yours": {"fi": "Sinun", "sv": "Ditt", "en": "Yours"},
    "segment_typical": {"fi": "Ryhmälle tyypillinen", "sv": "Typiskt för segmentet", "en": "Typical in segment"},
    "population_median": {
        "fi": "Kaikkien profiloitujen mediaani",
        "sv": "Median för alla profilerade",
        "en": "Median of all profiled customers",
    },
    "std_difference": {
        "fi": "Ero mediaanista (keskihajontoina)",
        "sv": "Skillnad från medianen (standardavvikelser)",
        "en": "Difference from median (standard deviations)",
    },
    "first_day": {"fi": "Ensimmäinen päivä", "sv": "Första dag", "en": "First day"},
    "last_day": {"fi": "Viimeinen päivä", "sv": "Sista dag", "en": "Last day"},
    "days": {"fi": "Päiviä", "sv": "Dagar", "en": "Days"},
    "current": {"fi": "Nyt mukana", "sv": "Med nu", "en": "In it now"},
    "segment": {"fi": "Asiakasryhmä", "sv": "Segment", "en": "Segment"},
    "reason": {"fi": "Syy", "sv": "Orsak", "en": "Reason"},
    "sent_at": {"fi": "Lähetetty", "sv": "Skickat", "en": "Sent"},
    "campaign_id": {"fi": "Kampanja", "sv": "Kampanj", "en": "Campaign"},
    "kind": {"fi": "Laji", "sv": "Typ", "en": "Kind"},
    "file": {"fi": "Tiedosto", "sv": "Fil", "en": "File"},
    "line": {"fi": "Rivi", "sv": "Rad", "en": "Line"},
    "rule": {"fi": "Sääntö", "sv": "Regel", "en": "Rule"},
    "name": {"fi": "Nimi", "sv": "Namn", "en": "Name"},
    "description": {"fi": "Kuvaus", "sv": "Beskrivning", "en": "Description"},
    "period": {"fi": "Säilytysaika", "sv": "Lagringstid", "en": "Kept for"},
    "yes": {"fi": "kyllä", "sv": "ja", "en": "yes"},
    "no": {"fi": "ei", "sv": "nej", "en": "no"},
    "all_channels": {"fi": "kaikki kanavat", "sv": "alla kanaler", "en": "all channels"},
    "total": {"fi": "Yhteensä", "sv": "Totalt", "en": "Total"},
    "controller": {"fi": "Rekisterinpitäjä", "sv": "Personuppgiftsansvarig", "en": "Controller"},
    # identity fields
    "f_customer_id": {"fi": "Asiakasnumero", "sv": "Kundnummer", "en": "Customer number"},
    "f_customer_type": {"fi": "Asiakastyyppi", "sv": "Kundtyp", "en": "Customer type"},
    "f_personal_id": {"fi": "Henkilötunnus", "sv": "Personbeteckning", "en": "Personal identity code"},
    "f_business_id": {"fi": "Y-tunnus", "sv": "FO-nummer", "en": "Business ID"},
    "f_first_name": {"fi": "Etunimi", "sv": "Förnamn", "en": "First name"},
    "f_last_name": {"fi": "Sukunimi", "sv": "Efternamn", "en": "Last name"},
    "f_company_name": {"fi": "Yrityksen nimi", "sv": "Företagets namn", "en": "Company name"},
    "f_language": {"fi": "Asiointikieli", "sv": "Kontaktspråk", "en": "Language"},
    "f_email": {"fi": "Sähköposti", "sv": "E-post", "en": "Email"},
    "f_phone": {"fi": "Puhelin", "sv": "Telefon", "en": "Phone"},
    "f_address": {"fi": "Osoite", "sv": "Adress", "en": "Address"},
    "f_crm_address": {
        "fi": "Osoite asiakasrekisterissä",
        "sv": "Adress i kundregistret",
        "en": "Address in the customer register",
    },
    "f_birth_date": {"fi": "Syntymäaika", "sv": "Födelsedatum", "en": "Date of birth"},
    "f_customer_since": {"fi": "Asiakkaana alkaen", "sv": "Kund sedan", "en": "Customer since"},
    "f_ended_on": {"fi": "Asiakkuus päättynyt", "sv": "Kundförhållandet upphörde", "en": "Relationship ended"},
    "f_deceased_on": {"fi": "Kuolinpäivä", "sv": "Dödsdag", "en": "Date of death"},
    "f_marketing_ban": {"fi": "Suoramarkkinointikielto", "sv": "Direktreklamspärr", "en": "Direct-marketing ban"},
    "f_safety_ban": {"fi": "Turvakielto", "sv": "Spärrmarkering", "en": "Non-disclosure for safety (turvakielto)"},
    # sources
    "src_crm": {
        "fi": "Asiakasrekisteri (CRM), tiedosto {file}, rivi {line}",
        "sv": "Kundregistret (CRM), fil {file}, rad {line}",
        "en": "Customer register (CRM), file {file}, line {line}",
    },
    "src_vtj": {
        "fi": "Väestötietojärjestelmä (VTJ), päivitetty {updated_on}",
        "sv": "Befolkningsdatasystemet (BDS), uppdaterad {updated_on}",
        "en": "Population Information System (VTJ), updated {updated_on}",
    },
    "src_vtj_none": {
        "fi": "Väestötietojärjestelmä (VTJ): ei muutosilmoituksia",
        "sv": "Befolkningsdatasystemet (BDS): inga ändringar",
        "en": "Population Information System (VTJ): no updates received",
    },
    "src_derived": {
        "fi": "Johdettu henkilötunnuksesta",
        "sv": "Härledd ur personbeteckningen",
        "en": "Derived from the personal identity code",
    },
    "src_contracts": {
        "fi": "Sopimusrekisteri, tiedosto {file}",
        "sv": "Avtalsregistret, fil {file}",
        "en": "Contract register, file {file}",
    },
    "src_datahub": {
        "fi": "Datahub (Fingrid), päiväkohtaiset summat",
        "sv": "Datahub (Fingrid), dagliga summor",
        "en": "Datahub (Fingrid), daily totals",
    },
    "src_billing": {"fi": "Laskutus, tiedosto {file}", "sv": "Fakturering, fil {file}", "en": "Billing, file {file}"},
    "src_consent": {"fi": "{source}, tiedosto {file}", "sv": "{source}, fil {file}", "en": "{source}, file {file}"},
    # notes
    "n_invalid": {"fi": "virheellinen, ei käytössä", "sv": "ogiltig, används inte", "en": "invalid, not used"},
    "n_absent": {"fi": "ei annettu", "sv": "inte angiven", "en": "not given"},
    "n_normalised": {"fi": "käytössä muodossa {value}", "sv": "används som {value}", "en": "used as {value}"},
    "n_mobile": {"fi": "matkapuhelin", "sv": "mobil", "en": "mobile"},
    "n_replaced_by_vtj": {
        "fi": "VTJ:n osoite on käytössä tämän sijaan",
        "sv": "BDS-adressen används i stället",
        "en": "the VTJ address is used instead",
    },
    "n_withheld": {
        "fi": "Osoitetta ei näytetä eikä käytetä, koska sinulla on turvakielto. Asiakasrekisterissä on osoite: {held}. Voit pyytää sen turvallista kanavaa pitkin.",
        "sv": "Adressen visas inte och används inte eftersom du har spärrmarkering. Kundregistret har en adress: {held}. Du kan begära den via en säker kanal.",
        "en": "The address is neither shown nor used because a non-disclosure for safety is recorded. The customer register holds an address: {held}. You can ask for it through a secure channel.",
    },
    "n_not_current": {
        "fi": "Et ole nykyisessä asiakasrekisterissä; alla ovat tiedot, joita meillä yhä on.",
        "sv": "Du finns inte i det nuvarande kundregistret; nedan är de uppgifter vi fortfarande har.",
        "en": "You are not in the current customer register; below is the data we still hold.",
    },
    "n_register_only": {
        "fi": "Et ole asiakkaamme, mutta meillä on sinusta väestötietojärjestelmän tietoja.",
        "sv": "Du är inte vår kund, men vi har uppgifter om dig från befolkningsdatasystemet.",
        "en": "You are not our customer, but we hold Population Information System data about you.",
    },
    # consents
    "consent_allowed": {"fi": "sallittu", "sv": "tillåten", "en": "allowed"},
    "consent_not_allowed": {"fi": "ei sallittu", "sv": "inte tillåten", "en": "not allowed"},
    "consent_no_event": {"fi": "ei tapahtumia", "sv": "inga händelser", "en": "no events"},
    "basis_consent": {"fi": "suostumus", "sv": "samtycke", "en": "consent"},
    "basis_opt_out": {"fi": "kieltoon asti", "sv": "tills du invänder", "en": "until you object"},
    "effect": {"fi": "Markkinointi", "sv": "Marknadsföring", "en": "Marketing"},
    # profiling
    "p_objected": {
        "fi": "Olet vastustanut profilointia ({when}). Sinua ei ole sijoitettu mihinkään asiakasryhmään, eikä tietojasi käytetä ryhmittelyssä.",
        "sv": "Du har invänt mot profilering ({when}). Du har inte placerats i något segment och dina uppgifter används inte i segmenteringen.",
        "en": "You objected to profiling ({when}). You are in no segment, and your data is not used in the segmentation.",
    },
    "p_not_profiled": {
        "fi": "Sinua ei ole profiloitu. Syy: {reasons}.",
        "sv": "Du har inte profilerats. Orsak: {reasons}.",
        "en": "You have not been profiled. Reason: {reasons}.",
    },
    "p_not_run": {
        "fi": "Profilointia ei ole ajettu.",
        "sv": "Profileringen har inte körts.",
        "en": "Profiling has not been run.",
    },
    "p_segment": {
        "fi": "Asiakasryhmäsi on ”{name}” ({description}).",
        "sv": "Ditt segment är ”{name}” ({description}).",
        "en": "Your segment is “{name}” ({description}).",
    },
    "p_method": {
        "fi": "Asiakkaat, joita saa profiloida, jaetaan automaattisesti {k} ryhmään (k-means-ryhmittely) {n} sähkönkäytön tunnusluvun perusteella ajalta {start} – {end}: {features}. Kukin asiakas kuuluu siihen ryhmään, jonka tyypillinen profiili on lähinnä hänen omaansa. Henkilötunnusta, nimeä tai osoitetta ei käytetä.",
        "sv": "Kunder som får profileras delas automatiskt in i {k} segment (k-means-klustring) utifrån {n} nyckeltal för elanvändningen under {start} – {end}: {features}. Varje kund hamnar i det segment vars typiska profil ligger närmast kundens egen. Personbeteckning, namn och adress används inte.",
        "en": "Customers who may be profiled are grouped automatically into {k} segments (k-means clustering) from {n} measures of electricity use over {start} – {end}: {features}. Each customer is placed in the segment whose typical profile is closest to their own. The identity code, name and address are never used.",
    },
    "p_top": {
        "fi": "Eniten sinun käyttöäsi muista erottivat: {items}.",
        "sv": "Det som mest skilde din förbrukning från andras: {items}.",
        "en": "What set your use apart most from other customers: {items}.",
    },
    "p_top_item": {
        "fi": "{label} (sinun {value}; kaikkien mediaani {median}; {sd} keskihajontaa {direction})",
        "sv": "{label} (ditt {value}; median för alla {median}; {sd} standardavvikelser {direction})",
        "en": "{label} (yours {value}; median of all {median}; {sd} standard deviations {direction})",
    },
    "higher": {"fi": "suurempi", "sv": "högre", "en": "higher"},
    "lower": {"fi": "pienempi", "sv": "lägre", "en": "lower"},
    "p_next": {
        "fi": "Lähin muu ryhmä oli ”{name}”; siitä sinut erotti eniten {features}.",
        "sv": "Det näst närmaste segmentet var ”{name}”; det som mest skilde dig från det var {features}.",
        "en": "The next closest segment was “{name}”; what separated you from it most was {features}.",
    },
    "p_effect": {
        "fi": "Ryhmää käytetään vain markkinoinnin kohdentamiseen. Se ei vaikuta hintoihin, sopimuksiin eikä laskutukseen. Voit vastustaa profilointia milloin tahansa.",
        "sv": "Segmentet används endast för att rikta marknadsföring. Det påverkar inte priser, avtal eller fakturering. Du kan när som helst invända mot profileringen.",
        "en": "The segment is used only to target marketing. It does not affect prices, contracts or billing. You can object to profiling at any time.",
    },
    "p_imputed": {
        "fi": "ei tiedossa (mallissa käytettiin mediaania)",
        "sv": "okänt (modellen använde medianen)",
        "en": "unknown (the model used the median)",
    },
    "p_hidden": {
        "fi": "ei näytetä (liian pieni ryhmä)",
        "sv": "visas inte (för liten grupp)",
        "en": "not shown (group too small)",
    },
    "p_model": {
        "fi": "Malli {version}, laskettu {as_of}.",
        "sv": "Modell {version}, beräknad {as_of}.",
        "en": "Model {version}, computed {as_of}.",
    },
    "p_no_explanation": {
        "fi": "Mallia ei löytynyt, joten tarkempaa selitystä ei voi antaa.",
        "sv": "Modellen hittades inte, så ingen närmare förklaring kan ges.",
        "en": "The stored model was not found, so no detailed explanation can be given.",
    },
    # audiences
    "a_none": {
        "fi": "Et ole ollut missään markkinoinnin kohderyhmässä.",
        "sv": "Du har inte varit med i någon målgrupp för marknadsföring.",
        "en": "You have not been in any marketing audience.",
    },
    # after an erasure
    "e_erased": {
        "fi": "Tietosi poistettiin {date} (EU:n yleisen tietosuoja-asetuksen 17 artikla). Alla on kaikki, mitä meillä on sinusta vielä tallessa, ja miksi.",
        "sv": "Dina uppgifter raderades {date} (artikel 17 i dataskyddsförordningen). Nedan finns allt vi fortfarande har om dig, och varför.",
        "en": "Your data was erased on {date} (GDPR Art. 17). Below is everything we still hold about you, and why.",
    },
    "h_still_held": {"fi": "Mitä meillä on yhä tallessa", "sv": "Vad vi fortfarande har", "en": "What we still hold"},
    "h_retained_invoices": {
        "fi": "Laskut (käyttö rajoitettu)",
        "sv": "Fakturor (begränsad behandling)",
        "en": "Invoices (restricted)",
    },
    "e_invoices": {
        "fi": "Säilytämme alla luetellut laskut ({n} kpl), koska laki velvoittaa siihen: kirjanpitoaineisto on säilytettävä {period} {after}. Laskujen käsittely on rajoitettu: niitä ei käytetä markkinointiin, profilointiin eikä analyyseihin. Viimeinen niistä poistetaan {until} jälkeen.",
        "sv": "Vi behåller fakturorna nedan ({n} st.) eftersom lagen kräver det: bokföringsmaterial ska bevaras i {period} {after}. Behandlingen av dem är begränsad: de används inte för marknadsföring, profilering eller analys. Den sista av dem raderas efter {until}.",
        "en": "We keep the invoices below ({n}) because the law requires it: accounting records must be kept for {period} {after}. Their use is restricted: they are not used for marketing, profiling or analysis. The last of them is deleted after {until}.",
    },
    "e_no_invoices": {"fi": "Laskuja ei säilytetä.", "sv": "Inga fakturor bevaras.", "en": "No invoices are kept."},
    "h_suppression": {"fi": "Poistomerkintä", "sv": "Raderingsmarkering", "en": "Suppression record"},
    "e_suppression": {
        "fi": "Poistomerkintä estää tietojasi palaamasta, jos ne toimitetaan meille myöhemmin uudelleen. Sen tunnisteista ei voi päätellä asiakasnumeroa eikä henkilötunnusta. Merkinnässä ei ole nimeä, yhteystietoja eikä osoitetta. Sitä ei poisteta, koska ilman sitä tietosi voisivat palata.",
        "sv": "Raderingsmarkeringen hindrar att dina uppgifter kommer tillbaka om de levereras till oss på nytt senare. Dess koder avslöjar varken kundnumret eller personbeteckningen. Markeringen innehåller inget namn, inga kontaktuppgifter och ingen adress. Den raderas inte, eftersom dina uppgifter annars kunde komma tillbaka.",
        "en": "The suppression record keeps your data from coming back if it is delivered to us again later. Its codes reveal neither the customer number nor the identity code. It holds no name, contact details or address. It is not deleted, because without it your data could come back.",
    },
    "s_pseudonyms": {
        "fi": "Asiakasnumerosta ja henkilötunnuksesta avaimella lasketut tunnisteet (pseudonyymit)",
        "sv": "Med en nyckel beräknade koder (pseudonymer) för kundnummer och personbeteckning",
        "en": "Keyed codes (pseudonyms) of the customer number and identity code",
    },
    "s_erased_on": {"fi": "Poistopäivä", "sv": "Raderingsdatum", "en": "Date of erasure"},
    "s_points": {
        "fi": "Käyttöpaikkojen sopimuskaudet, joiden mittaustietoja ei enää ladata",
        "sv": "Avtalsperioder för mätpunkter vars mätdata inte längre läses in",
        "en": "Contract periods of metering points whose readings are no longer loaded",
    },
    "e_nothing_else": {
        "fi": "Muuta emme sinusta säilytä: henkilö- ja yhteystiedot, sopimukset, kulutustiedot, suostumukset, asiakasryhmä ja markkinoinnin kohderyhmät on poistettu. Mittaustietosi jätettiin pois kaikesta käytöstä poistopäivänä, ja ne poistetaan tiedostoista ensimmäisessä poiston jälkeisessä päivittäisessä ajossa.",
        "sv": "Inget annat om dig finns kvar: identitets- och kontaktuppgifter, avtal, förbrukningsdata, samtycken, segment och marknadsföringsmålgrupper har raderats. Dina mätdata undantogs från all användning på raderingsdagen och raderas ur filerna i den första dagliga körningen efter raderingen.",
        "en": "Nothing else about you is held: identity and contact data, contracts, consumption data, consents, the segment and marketing audiences have been erased. Your metering readings were excluded from every use on the day of erasure, and are deleted from the files in the first daily run after it.",
    },
    "kept_until": {"fi": "Säilytetään asti", "sv": "Bevaras till", "en": "Kept until"},
}

FEATURE_LABELS: dict[str, dict[str, str]] = {
    "annual_kwh": {"fi": "vuosikulutus (kWh)", "sv": "årsförbrukning (kWh)", "en": "annual consumption (kWh)"},
    "winter_summer_ratio": {
        "fi": "talven ja kesän kulutuksen suhde",
        "sv": "förhållandet mellan vinter- och sommarförbrukning",
        "en": "winter-to-summer use ratio",
    },
    "night_share": {
        "fi": "yökäytön osuus (22–07)",
        "sv": "andel nattförbrukning (22–07)",
        "en": "share of use at night (22–07)",
    },
    "weekday_daytime_share": {
        "fi": "arkipäivän päiväkäytön osuus (8–17)",
        "sv": "andel dagtid på vardagar (8–17)",
        "en": "share of use on weekday daytime (8–17)",
    },
    "weekday_weekend_ratio": {
        "fi": "arkipäivän ja viikonlopun käytön suhde",
        "sv": "förhållandet mellan vardags- och helgförbrukning",
        "en": "weekday-to-weekend use ratio",
    },
    "invoices_12m": {"fi": "laskuja 12 kk", "sv": "fakturor 12 mån", "en": "invoices in 12 months"},
    "late_share": {"fi": "myöhässä maksettujen osuus", "sv": "andel betalda för sent", "en": "share paid late"},
    "mean_days_late": {
        "fi": "keskimääräinen myöhästyminen (pv)",
        "sv": "genomsnittlig försening (dagar)",
        "en": "mean days late",
    },
    "reminders_12m": {"fi": "muistutuksia 12 kk", "sv": "påminnelser 12 mån", "en": "reminders in 12 months"},
    "collections_12m": {
        "fi": "perintään siirtyneitä 12 kk",
        "sv": "till indrivning 12 mån",
        "en": "sent to collection in 12 months",
    },
}

CODES: dict[str, dict[str, str]] = {
    # purposes, channels, actions, states
    "marketing": {"fi": "markkinointi", "sv": "marknadsföring", "en": "marketing"},
    "profiling": {"fi": "profilointi", "sv": "profilering", "en": "profiling"},
    "newsletter": {"fi": "uutiskirje", "sv": "nyhetsbrev", "en": "newsletter"},
    "email": {"fi": "sähköposti", "sv": "e-post", "en": "email"},
    "sms": {"fi": "tekstiviesti", "sv": "sms", "en": "SMS"},
    "letter": {"fi": "kirje", "sv": "brev", "en": "letter"},
    "phone": {"fi": "puhelin", "sv": "telefon", "en": "phone"},
    "granted": {"fi": "annettu", "sv": "givet", "en": "granted"},
    "withdrawn": {"fi": "peruttu", "sv": "återkallat", "en": "withdrawn"},
    "web_form": {"fi": "verkkolomake", "sv": "webbformulär", "en": "web form"},
    "customer_service": {"fi": "asiakaspalvelu", "sv": "kundtjänst", "en": "customer service"},
    "mobile_app": {"fi": "mobiilisovellus", "sv": "mobilapp", "en": "mobile app"},
    "paper_form": {"fi": "paperilomake", "sv": "pappersblankett", "en": "paper form"},
    "customer_communication": {"fi": "asiakasviestintä", "sv": "kundkommunikation", "en": "customer communication"},
    "consent": {"fi": "suostumus", "sv": "samtycke", "en": "consent"},
    "opt_out": {"fi": "kieltoon asti", "sv": "tills du invänder", "en": "until you object"},
    "soft_opt_in": {"fi": "asiakassuhde", "sv": "kundförhållande", "en": "existing customer"},
    "person": {"fi": "henkilö", "sv": "person", "en": "person"},
    "company": {"fi": "yritys", "sv": "företag", "en": "company"},
    "fixed_term": {"fi": "määräaikainen", "sv": "tidsbundet", "en": "fixed-term"},
    "open_ended": {"fi": "toistaiseksi voimassa", "sv": "tills vidare", "en": "open-ended"},
    "apartment": {"fi": "kerrostaloasunto", "sv": "lägenhet", "en": "apartment"},
    "row_house": {"fi": "rivitalo", "sv": "radhus", "en": "row house"},
    "detached_house": {"fi": "omakotitalo", "sv": "egnahemshus", "en": "detached house"},
    "summer_cottage": {"fi": "kesämökki", "sv": "sommarstuga", "en": "summer cottage"},
    "district": {"fi": "kaukolämpö", "sv": "fjärrvärme", "en": "district heating"},
    "electric": {"fi": "sähkölämmitys", "sv": "elvärme", "en": "electric heating"},
    "heat_pump": {"fi": "lämpöpumppu", "sv": "värmepump", "en": "heat pump"},
    "other": {"fi": "muu", "sv": "annan", "en": "other"},
    "fi": {"fi": "suomi", "sv": "finska", "en": "Finnish"},
    "sv": {"fi": "ruotsi", "sv": "svenska", "en": "Swedish"},
    "en": {"fi": "englanti", "sv": "engelska", "en": "English"},
    # exclusion and not-profiled reasons
    "consent_missing": {"fi": "suostumusta ei ole annettu", "sv": "samtycke saknas", "en": "no consent given"},
    "consent_withdrawn": {
        "fi": "suostumus peruttu tai markkinointi kielletty",
        "sv": "samtycke återkallat eller marknadsföring förbjuden",
        "en": "consent withdrawn or marketing refused",
    },
    "invalid_contact": {
        "fi": "yhteystieto puuttuu tai on virheellinen",
        "sv": "kontaktuppgift saknas eller är ogiltig",
        "en": "contact detail missing or invalid",
    },
    "deceased": {"fi": "kuollut", "sv": "avliden", "en": "deceased"},
    "minor": {"fi": "alle 18-vuotias", "sv": "under 18 år", "en": "under 18"},
    "former_customer": {
        "fi": "asiakkuus päättyi yli vuosi sitten",
        "sv": "kundförhållandet upphörde för över ett år sedan",
        "en": "relationship ended over a year ago",
    },
    "frequency_cap": {
        "fi": "markkinointikertojen enimmäismäärä täynnä",
        "sv": "högsta antal marknadsföringskontakter nått",
        "en": "marketing frequency cap reached",
    },
    "asml_mail": {
        "fi": "ASML:n postikieltorekisteri",
        "sv": "ASML:s spärregister för post",
        "en": "ASML mail opt-out register",
    },
    "asml_phone": {
        "fi": "ASML:n puhelinkieltorekisteri",
        "sv": "ASML:s spärregister för telefon",
        "en": "ASML phone opt-out register",
    },
    "vtj_marketing_ban": {
        "fi": "VTJ:n suoramarkkinointikielto",
        "sv": "BDS direktreklamspärr",
        "en": "VTJ direct-marketing ban",
    },
    "safety_ban": {"fi": "turvakielto", "sv": "spärrmarkering", "en": "non-disclosure for safety"},
    "profiling_objection": {
        "fi": "olet vastustanut profilointia",
        "sv": "du har invänt mot profilering",
        "en": "you objected to profiling",
    },
    "no_active_contract": {
        "fi": "ei voimassa olevaa sopimusta",
        "sv": "inget gällande avtal",
        "en": "no active contract",
    },
    "insufficient_history": {
        "fi": "liian vähän kulutustietoja",
        "sv": "för lite förbrukningsdata",
        "en": "too little consumption history",
    },
    "not_current_customer": {"fi": "ei nykyinen asiakas", "sv": "inte nuvarande kund", "en": "not a current customer"},
    "not_in_population": {
        "fi": "ei mukana viimeisimmässä ryhmittelyssä",
        "sv": "inte med i den senaste segmenteringen",
        "en": "not in the latest segmentation",
    },
    "no_usable_contact": {
        "fi": "ei käyttökelpoista yhteystietoa",
        "sv": "ingen användbar kontaktuppgift",
        "en": "no usable contact",
    },
}


def t(key: str, lang: str, **kw: Any) -> str:
    text = T[key][lang]
    return text.format(**kw) if kw else text


def code(value: Any, lang: str) -> str:
    if value is None:
        return "–"
    return CODES.get(str(value), {}).get(lang, str(value))


# =================================================================================================
# formatting
# =================================================================================================
def fmt_num(value: Any, lang: str, decimals: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{float(value):,.{decimals}f}"
    if lang in ("fi", "sv"):
        text = text.replace(",", "\u00a0").replace(".", ",")
    return text


def fmt_date(value: Any, lang: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    if isinstance(value, dt.datetime):
        value = value.date()
    return f"{value.day}.{value.month}.{value.year}" if lang == "fi" else value.isoformat()


def fmt_ts(value: Any, lang: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    local = value.astimezone(HELSINKI)
    if lang == "fi":
        return f"{local.day}.{local.month}.{local.year} klo {local:%H.%M}"
    if lang == "sv":
        return f"{local:%Y-%m-%d} kl. {local:%H:%M}"
    return f"{local:%Y-%m-%d %H:%M} (Helsinki)"


def fmt_bool(value: Any, lang: str) -> str:
    return "–" if value is None else t("yes" if value else "no", lang)


def fmt_feature(name: str, value: Any, lang: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if name.endswith("_share"):
        return fmt_num(100 * float(value), lang) + "\u00a0%"
    if name in ("annual_kwh",):
        return fmt_num(value, lang) + "\u00a0kWh"
    if name.endswith("_ratio") or name == "mean_days_late":
        return fmt_num(value, lang, 2)
    return fmt_num(value, lang, 0 if float(value).is_integer() else 2)


def fmt_period(period: dict[str, int], lang: str) -> str:
    unit, n = next(iter(period.items()))
    words = {
        "years": {"fi": ("vuosi", "vuotta"), "sv": ("år", "år"), "en": ("year", "years")},
        "months": {"fi": ("kuukausi", "kuukautta"), "sv": ("månad", "månader"), "en": ("month", "months")},
        "days": {"fi": ("päivä", "päivää"), "sv": ("dag", "dagar"), "en": ("day", "days")},
    }[unit][lang]
    return f"{n} {words[0] if n == 1 else words[1]}"


# =================================================================================================
# finding the customer
# =================================================================================================
@dataclass
class Match:
    customer_ids: list[str] = field(default_factory=list)
    #: the identity code matched only the population register (no customer record)
    register_only: bool = False
    #: nothing is held but what an erasure of this customer kept
    erased: HeldAfterErasure | None = None


@dataclass(frozen=True)
class Zones:
    warehouse: Path
    analytics: Path
    models: Path
    daily: Path

    @classmethod
    def of(cls, storage: LupaStorage) -> Zones:
        root = Path(storage.data_dir)
        return cls(
            root / "warehouse" / "warehouse.duckdb",
            root / "analytics" / "analytics.duckdb",
            root / "analytics" / "models",
            root / "warehouse" / "metering" / "daily",
        )


def normalise_personal_id(raw: str) -> str:
    """Upper-case and strip; raise (without quoting the value) when it is not a henkilötunnus."""
    value = "".join(raw.split()).upper()
    problem = personal_id_problem(value) if value else "personal_id_format"
    if problem in ("personal_id_format", "personal_id_checksum"):
        raise AccessReportError(
            f"the identity code read from standard input is not a valid Finnish personal identity code ({problem})"
        )
    return value


_CUSTOMER_TABLES = (
    "customers",
    "customers_valid",
    "contracts",
    "invoices",
    "consent_events",
    "contact_history",
    "audience_history",
)


def find_customers(storage: LupaStorage, *, customer_id: str | None = None, personal_id: str | None = None) -> Match:
    """The customers held under the id or identity code. Data still held comes first; only when
    there is none does an erasure of the subject answer, with what it kept."""
    zones = Zones.of(storage)
    if not zones.warehouse.exists():
        raise AccessReportError(f"no warehouse at {zones.warehouse}: run the pipeline first")
    cid = customer_id.strip().upper() if customer_id is not None else None
    with connect(zones.warehouse, read_only=True) as conn:
        if cid is not None:
            for table in _CUSTOMER_TABLES:
                if (
                    table_exists(conn, table)
                    and conn.sql(
                        f'select count(*) from "{table}" where customer_id = $c', params={"c": cid}
                    ).fetchall()[0][0]
                ):
                    return Match([cid])
        else:
            ids: set[str] = set()
            for table in ("customers", "customers_valid"):
                if table_exists(conn, table):
                    rows = conn.sql(
                        f'select distinct customer_id from "{table}" where upper(trim(personal_id)) = $p',
                        params={"p": personal_id},
                    ).fetchall()
                    ids.update(r[0] for r in rows)
            if ids:
                return Match(sorted(ids))
            if (
                table_exists(conn, "population_register")
                and conn.sql(
                    "select count(*) from population_register where upper(trim(personal_id)) = $p",
                    params={"p": personal_id},
                ).fetchall()[0][0]
            ):
                return Match([], register_only=True)
    return Match(erased=held_after_erasure(storage, customer_id=cid, personal_id=personal_id))


# =================================================================================================
# gathering the data of one customer
# =================================================================================================
def _rows(conn, sql: str, **params: Any) -> list[dict[str, Any]]:
    return query(conn, sql, **params).to_dicts()


def _one(conn, sql: str, **params: Any) -> dict[str, Any] | None:
    rows = _rows(conn, sql, **params)
    return rows[0] if rows else None


def _identity(current: dict | None, crm: dict | None, vtj: dict | None) -> list[dict[str, Any]]:
    """Every identity and contact value held, each with where it came from."""
    base = current or crm or {}
    crm_src = (
        {"system": "crm", "file": crm["file"], "line": crm["line"]}
        if crm
        else {"system": "crm", "file": base.get("snapshot_file"), "line": None}
    )
    vtj_src = {"system": "vtj", "updated_on": vtj["updated_on"]} if vtj else {"system": "vtj", "updated_on": None}
    items: list[dict[str, Any]] = []

    def add(name: str, value: Any, source: dict, note: str | None = None, **extra: Any) -> None:
        items.append({"field": name, "value": value, "source": source, "note": note, **extra})

    get = lambda key: (crm or {}).get(key, base.get(key))  # noqa: E731 - the value as the CRM delivered it
    add("customer_id", base.get("customer_id"), crm_src)
    add("customer_type", get("customer_type"), crm_src)
    for key in ("personal_id", "business_id", "first_name", "last_name", "company_name"):
        if get(key) is not None:
            add(key, get(key), crm_src)
    add("language", get("language"), crm_src)
    email_status = (current or {}).get("email_status")
    add(
        "email",
        get("email"),
        crm_src,
        None if email_status in (None, "valid") else f"n_{email_status}",
        status=email_status,
        used_as=(current or {}).get("email"),
    )
    phone_status = (current or {}).get("phone_status")
    add(
        "phone",
        get("phone") if crm else (current or {}).get("phone_e164"),
        crm_src,
        None if phone_status in (None, "valid") else f"n_{phone_status}",
        status=phone_status,
        used_as=(current or {}).get("phone_e164"),
        mobile=(current or {}).get("phone_is_mobile"),
    )
    crm_address = [crm.get(k) for k in ("street_address", "postal_code", "city")] if crm else [None, None, None]
    crm_address_text = ", ".join(v for v in crm_address if v) or None
    safety_ban = bool((current or {}).get("safety_ban") or (vtj or {}).get("safety_ban"))
    if safety_ban:
        # landing-zone contract: under a safety ban no address may be used or shown at all
        add("address", None, vtj_src, "n_withheld", withheld=True, held_in_crm=crm_address_text is not None)
    else:
        source = (current or {}).get("address_source")
        if source == "vtj" and vtj:
            add(
                "address",
                ", ".join(v for v in (vtj.get("street_address"), vtj.get("postal_code"), vtj.get("city")) if v),
                vtj_src,
            )
            vtj_text = items[-1]["value"]
            if crm_address_text and crm_address_text != vtj_text:
                add("crm_address", crm_address_text, crm_src, "n_replaced_by_vtj")
        elif crm_address_text:
            add("address", crm_address_text, crm_src)
    if base.get("birth_date") is not None:
        add("birth_date", base.get("birth_date"), {"system": "derived"})
    add("customer_since", get("customer_since"), crm_src)
    if get("ended_on") is not None:
        add("ended_on", get("ended_on"), crm_src)
    if (base.get("customer_type") or get("customer_type")) == "person":
        add("deceased_on", (vtj or {}).get("deceased_on"), vtj_src)
        add("marketing_ban", bool((vtj or {}).get("marketing_ban")), vtj_src)
        add("safety_ban", safety_ban, vtj_src)
    return items


def _daily_rows(zones: Zones, periods: list[dict[str, Any]]) -> pl.DataFrame:
    """The customer's per-day metering aggregates, only inside their own attribution periods."""
    empty = pl.DataFrame(
        schema={
            "metering_point_id": pl.String,
            "business_day": pl.Date,
            "kwh_total": pl.Float64,
            "n_ok": pl.Int64,
            "n_estimated": pl.Int64,
            "n_missing": pl.Int64,
            "n_expected": pl.Int64,
        }
    )
    if not periods or not zones.daily.is_dir():
        return empty
    today = dt.date.today()
    lo = min(p["valid_from"] for p in periods)
    hi = max(p["valid_to"] or today for p in periods)
    files = []
    for path in sorted(zones.daily.glob("business_day=*/part.parquet")):
        try:
            day = dt.date.fromisoformat(path.parent.name.split("=", 1)[1])
        except ValueError:
            continue
        if lo <= day <= hi:
            files.append(path)
    if not files:
        return empty
    points = sorted({p["metering_point_id"] for p in periods})
    lf = pl.scan_parquet(files, hive_partitioning=False)
    day = pl.col("business_day")
    if lf.collect_schema()["business_day"] == pl.String:
        day = day.str.to_date("%Y-%m-%d")
    daily = (
        lf.filter(pl.col("metering_point_id").is_in(points))
        .select(
            "metering_point_id",
            day.cast(pl.Date).alias("business_day"),
            "kwh_total",
            "n_ok",
            "n_estimated",
            "n_missing",
            "n_expected",
        )
        .collect()
    )
    spans = pl.DataFrame(
        {
            "metering_point_id": [p["metering_point_id"] for p in periods],
            "valid_from": [p["valid_from"] for p in periods],
            "valid_to": [p["valid_to"] or dt.date(9999, 12, 31) for p in periods],
        },
        schema={"metering_point_id": pl.String, "valid_from": pl.Date, "valid_to": pl.Date},
    )
    inside = daily.join(spans, on="metering_point_id").filter(
        pl.col("business_day").is_between(pl.col("valid_from"), pl.col("valid_to"))
    )
    return (
        inside.drop("valid_from", "valid_to")
        .unique(["metering_point_id", "business_day"])
        .sort("metering_point_id", "business_day")
    )


def _monthly(daily: pl.DataFrame) -> list[dict[str, Any]]:
    if daily.is_empty():
        return []
    return (
        daily.group_by("metering_point_id", pl.col("business_day").dt.strftime("%Y-%m").alias("month"))
        .agg(
            pl.col("kwh_total").sum().round(3).alias("kwh"),
            pl.col("business_day").n_unique().alias("days_with_data"),
            pl.col("n_ok").sum().alias("readings_ok"),
            pl.col("n_estimated").sum().alias("readings_estimated"),
            pl.col("n_missing").sum().alias("readings_missing"),
        )
        .sort("metering_point_id", "month")
        .to_dicts()
    )


def _audience_history(rows: list[dict[str, Any]], latest_day: dt.date | None) -> list[dict[str, Any]]:
    """Daily rows collapsed per (channel, legal basis, segment, policy version), keeping every day."""
    if not rows:
        return []
    frame = pl.DataFrame(rows)
    out = (
        frame.group_by("channel", "legal_basis", "segment_id", "policy_version")
        .agg(
            pl.col("business_day").min().alias("first_day"),
            pl.col("business_day").max().alias("last_day"),
            pl.col("business_day").n_unique().alias("days"),
            pl.col("business_day").sort().alias("business_days"),
        )
        .sort("first_day", "channel")
        .to_dicts()
    )
    for r in out:
        r["current"] = latest_day is not None and r["last_day"] == latest_day
    return out


def _invoice_summary(invoices: list[dict[str, Any]]) -> dict[str, Any]:
    paid_late = sum(1 for i in invoices if i["paid_on"] is not None and i["paid_on"] > i["due_on"])
    return {
        "invoices": len(invoices),
        "total_eur": float(sum((i["amount_eur"] or Decimal(0)) for i in invoices)),
        "unpaid": sum(1 for i in invoices if i["paid_on"] is None),
        "paid_late": paid_late,
        "reminders": sum(int(i["reminders"] or 0) for i in invoices),
        "in_collection": sum(1 for i in invoices if i["in_collection"]),
    }


def _quarantined(conn, customer_id: str | None, personal_id: str | None) -> list[dict[str, Any]]:
    """Rejected records whose fields name this customer (rule and file only, never the raw record)."""
    if not table_exists(conn, "quarantine"):
        return []
    keys = [k for k in (customer_id, personal_id) if k]
    if not keys:
        return []
    return _rows(
        conn,
        "select source, file, line, rule, detail from quarantine "
        "where list_has_any(string_split(replace(raw, '\"', ''), ';'), $keys) order by source, file, line",
        keys=keys,
    )


def build_report(
    storage: LupaStorage,
    customer_id: str | None,
    *,
    personal_id: str | None = None,
    language: str | None = None,
    matched_by: str = "customer_id",
    generated_at: dt.datetime | None = None,
    register: dict[str, Any] | None = None,
    policy: MarketingPolicy | None = None,
) -> dict[str, Any]:
    """Everything held about one customer (or, with customer_id None, one population-register
    person found by `personal_id`), as one JSON-serialisable dict with language-neutral codes."""
    zones = Zones.of(storage)
    policy = policy or load_policy()
    register = register or load_processing_register(policy=policy)
    generated_at = (generated_at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    with connect(zones.warehouse, read_only=True) as conn:
        has = lambda table: table_exists(conn, table)  # noqa: E731
        current = crm = None
        if customer_id is not None:
            current = (
                _one(conn, "select * from customers where customer_id = $c", c=customer_id)
                if has("customers")
                else None
            )
            if has("customers_valid"):
                crm = _one(
                    conn,
                    "select * from customers_valid where customer_id = $c order by (file = $f) desc, delivered_on desc, line desc limit 1",
                    c=customer_id,
                    f=(current or {}).get("snapshot_file") or "",
                )
        pid = personal_id or (current or crm or {}).get("personal_id")
        vtj = (
            _one(conn, "select * from population_register where upper(trim(personal_id)) = upper(trim($p))", p=pid)
            if pid and has("population_register")
            else None
        )
        c = customer_id or ""

        def mine(table: str, order: str, columns: str = "*") -> list[dict[str, Any]]:
            """This customer's rows of a warehouse table (none when the table does not exist yet)."""
            return (
                _rows(conn, f'select {columns} from "{table}" where customer_id = $c order by {order}', c=c)
                if has(table)
                else []
            )

        contracts = mine("contracts", "start_date, contract_id")
        periods = mine("metering_point_attribution", "metering_point_id, valid_from")
        invoices = mine("invoices", "issued_on, invoice_id")
        events = mine("consent_events", "occurred_at, event_id")
        state = mine("consent_state", "purpose, channel nulls first")
        contacts = mine("contact_history", "sent_at, channel, campaign_id")
        history = mine("audience_history", "business_day, channel")
        latest_day = (
            conn.sql("select max(business_day) from audience_history").fetchall()[0][0]
            if has("audience_history")
            else None
        )
        exclusions = mine("audience_exclusions", "channel, reason", "channel, reason, policy_version, as_of")
        renewals = mine(
            "renewal_offers", "contract_id", "contract_id, end_date, channel, reason, policy_version, as_of"
        )
        rejected = _quarantined(conn, customer_id, pid)
        latest_delivery = (
            conn.sql("select max(delivered_on) from file_registry").fetchall()[0][0] if has("file_registry") else None
        )

    daily = _daily_rows(zones, periods)
    for inv in invoices:
        paid, due = inv["paid_on"], inv["due_on"]
        inv["days_late"] = None if paid is None else max((paid - due).days, 0)  # unpaid: not known yet
    points: dict[str, dict[str, Any]] = {}
    for p in periods:
        contract = next((k for k in contracts if k["contract_id"] == p["contract_id"]), {})
        point = points.setdefault(
            p["metering_point_id"],
            {
                "metering_point_id": p["metering_point_id"],
                "site_type": contract.get("site_type"),
                "heating": contract.get("heating"),
                "periods": [],
            },
        )
        point["periods"].append(
            {"contract_id": p["contract_id"], "valid_from": p["valid_from"], "valid_to": p["valid_to"]}
        )

    profiling = _profiling(zones, customer_id, current, state, contracts, daily, register, policy)
    report = {
        "report": {
            "kind": "gdpr_art15_access_report",
            "generated_at": generated_at,
            "language": language or (current or crm or {}).get("language") or "fi",
            "customer_id": customer_id,
            "matched_by": matched_by,
            "in_current_customer_register": current is not None,
            "register_only": customer_id is None,
            "erased": False,
            "latest_delivery_processed": latest_delivery,
            "audiences_as_of": latest_day,
            "policy_version": policy.version,
            "processing_register_version": register["version"],
        },
        "identity": _identity(current, crm, vtj) if (current or crm) else [],
        "population_register": vtj,
        "contracts": contracts,
        "metering_points": list(points.values()),
        "consumption_monthly": _monthly(daily),
        "invoices": {
            "items": invoices,
            "summary": _invoice_summary(invoices),
            "payment_features": profiling.pop("payment_features"),
        },
        "consents": {"events": events, "state": state, "marketing_channels": _channel_state(state, policy)},
        "profiling": profiling,
        "audiences": {
            "history": _audience_history(history, latest_day),
            "exclusions": exclusions,
            "renewal_offers": renewals,
        },
        "contact_history": contacts,
        "rejected_records": rejected,
        "processing": _processing(register),
    }
    if profiling.get("objected"):
        report["audiences"]["history"] = [r | {"segment_id": None} for r in report["audiences"]["history"]]
    return report


def build_erased_report(
    held: HeldAfterErasure,
    *,
    language: str | None = None,
    matched_by: str = "customer_id",
    generated_at: dt.datetime | None = None,
    register: dict[str, Any] | None = None,
    policy: MarketingPolicy | None = None,
) -> dict[str, Any]:
    """The report for an erased customer: when the erasure was, and exactly what it kept and why.
    Their language was erased with them, so it is the one asked for, or Finnish."""
    policy = policy or load_policy()
    register = register or load_processing_register(policy=policy)
    invoice_rule = next(r for r in register["retention"] if r["id"] == "invoices")
    invoices = [
        {k: v for k, v in inv.items() if k not in ("customer_id", "retention_basis")}
        | {"kept_until": policy.retention.invoice_kept_until(inv["issued_on"])}
        for inv in held.invoices
    ]
    return {
        "report": {
            "kind": "gdpr_art15_access_report",
            "generated_at": (generated_at or dt.datetime.now(dt.UTC)).replace(microsecond=0),
            "language": language or "fi",
            "customer_id": held.customer_id,
            "matched_by": matched_by,
            "erased": True,
            "policy_version": policy.version,
            "processing_register_version": register["version"],
        },
        "erasure": {
            "erased_on": held.erased_on,
            "retained_invoices": {
                "items": invoices,
                "restricted": True,
                "retention": {k: invoice_rule[k] for k in ("name", "period", "after", "period_source")},
                "kept_until": max((i["kept_until"] for i in invoices), default=None),
            },
            "suppression_record": {
                "erased_on": held.erased_on,
                "pseudonyms": held.pseudonyms,
                "metering_point_periods": held.metering_point_periods,
                "kept_until": None,
            },
        },
        "processing": {
            "version": register["version"],
            "controller": register["controller"],
            "rights": register["rights"],
        },
    }


def _channel_state(state: list[dict[str, Any]], policy: MarketingPolicy) -> list[dict[str, Any]]:
    """What the consent log means for each marketing channel under the policy."""
    out = []
    for ch in CHANNELS:
        cp = policy.channel(ch)
        row = next(
            (s for s in state if s["purpose"] == cp.consent.purpose and s["channel"] == cp.consent.channel), None
        )
        current = row["state"] if row else None
        allowed = current == "granted" if cp.legal_basis == "consent" else current != "withdrawn"
        out.append(
            {
                "channel": ch,
                "legal_basis": cp.legal_basis,
                "state": current,
                "deciding_event_id": row["event_id"] if row else None,
                "allowed_by_consent_log": allowed,
            }
        )
    return out


def _processing(register: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": register["version"],
        "controller": register["controller"],
        "purposes": [{k: p[k] for k in ("id", "name", "legal_basis", "description")} for p in register["purposes"]],
        "recipients": [{k: r[k] for k in ("id", "name", "description")} for r in register["recipients"]],
        "sources": [{k: s[k] for k in ("id", "name")} for s in register["sources"]],
        "retention": [
            {k: r[k] for k in ("id", "name", "period", "period_source", "after") if k in r}
            for r in register["retention"]
        ],
        "rights": register["rights"],
    }


# =================================================================================================
# profiling: the segment and the meaningful information about the logic (Art. 15(1)(h))
# =================================================================================================
def _profiling(
    zones: Zones,
    customer_id: str | None,
    current: dict | None,
    state: list[dict],
    contracts: list[dict],
    daily: pl.DataFrame,
    register: dict,
    policy: MarketingPolicy,
) -> dict[str, Any]:
    objection = next((s for s in state if s["purpose"] == "profiling" and s["state"] == "withdrawn"), None)
    out: dict[str, Any] = {
        "objected": objection is not None,
        "objection_event": objection,
        "profiled": False,
        "segment": None,
        "features": None,
        "explanation": None,
        "not_profiled_reasons": [],
        "payment_features": None,
    }
    if customer_id is None or not zones.analytics.exists():
        out["not_profiled_reasons"] = (
            ["profiling_objection"] if objection else (["not_current_customer"] if customer_id is None else [])
        )
        return out
    with connect(zones.analytics, read_only=True) as conn:
        has = lambda table: table_exists(conn, table)  # noqa: E731
        features = (
            _one(conn, "select * from customer_features where customer_id = $c", c=customer_id)
            if has("customer_features")
            else None
        )
        segment = (
            _one(conn, "select * from customer_segments where customer_id = $c", c=customer_id)
            if has("customer_segments")
            else None
        )
        as_of = (
            conn.sql("select max(as_of) from profiling_population").fetchall()[0][0]
            if has("profiling_population")
            else None
        )
        population = (
            query(conn, "select * from customer_features") if (features and segment and not objection) else None
        )
        catalogue = (
            _one(
                conn,
                "select * from segment_catalogue where segment_id = $s and model_version = $v",
                s=segment["segment_id"],
                v=segment["model_version"],
            )
            if segment and has("segment_catalogue")
            else None
        )
    if objection:
        # Art. 21(2): an objector has no segment, whatever an older table might still hold
        out["not_profiled_reasons"] = ["profiling_objection"]
        return out
    if features:
        out["features"] = {k: v for k, v in features.items() if k != "customer_id"}
        out["payment_features"] = {k: features.get(k) for k in PAYMENT_FEATURES}
    if segment is None:
        out["not_profiled_reasons"] = (
            _not_profiled_reasons(customer_id, current, state, contracts, daily, as_of) if as_of else []
        )
        out["as_of"] = as_of
        return out
    out["profiled"] = True
    out["segment"] = {
        "segment_id": segment["segment_id"],
        "model_version": segment["model_version"],
        "as_of": segment["as_of"],
        **(
            {f"{k}_{lang}": catalogue[f"{k}_{lang}"] for k in ("name", "description") for lang in LANGS}
            if catalogue
            else {}
        ),
        "segment_size": catalogue["size"] if catalogue else None,
    }
    if features and population is not None:
        out["explanation"] = explain_segment(zones.models, segment, features, population, catalogue)
    return out


def _not_profiled_reasons(
    customer_id: str,
    current: dict | None,
    state: list[dict],
    contracts: list[dict],
    daily: pl.DataFrame,
    as_of: dt.date,
) -> list[str]:
    """The profiling population's own rules (data_contracts.profiling), evaluated for this customer."""
    if current is None:
        return ["not_current_customer"]
    rules = ProfilingRules()
    start = as_of - dt.timedelta(days=rules.window_days - 1)
    window = (
        daily.filter(pl.col("business_day").is_between(start, as_of) & ((pl.col("n_ok") + pl.col("n_estimated")) > 0))
        if daily.height
        else daily
    )
    history = pl.DataFrame(
        {
            "customer_id": [customer_id],
            "days_with_readings": [window["business_day"].n_unique() if window.height else 0],
        }
    )
    customers = pl.DataFrame(
        [{k: current[k] for k in ("customer_id", "customer_type", "deceased_on", "birth_date")}],
        schema={"customer_id": pl.String, "customer_type": pl.String, "deceased_on": pl.Date, "birth_date": pl.Date},
    )
    consent = pl.DataFrame(
        [{"customer_id": s["customer_id"], "purpose": s["purpose"], "state": s["state"]} for s in state],
        schema={"customer_id": pl.String, "purpose": pl.String, "state": pl.String},
    )
    contract_frame = pl.DataFrame(
        [
            {"customer_id": k["customer_id"], "start_date": k["start_date"], "end_date": k["end_date"]}
            for k in contracts
        ],
        schema={"customer_id": pl.String, "start_date": pl.Date, "end_date": pl.Date},
    )
    _, exclusions = split_population(candidates(customers, consent, contract_frame, history, as_of), as_of, rules)
    reasons = exclusions["reason"].to_list()
    return reasons or ["not_in_population"]


def _transformed_space(pipeline):
    """The stored pipeline without its clustering step: transform -> impute -> scale."""
    return pipeline[:-1]


def explain_segment(
    models_dir: Path,
    segment: dict[str, Any],
    features: dict[str, Any],
    population: pl.DataFrame,
    catalogue: dict[str, Any] | None,
) -> dict[str, Any]:
    """The customer's clustering features next to their segment's typical values and the population
    median, with standardised distances in the model's own scaled space (after its transforms), the
    features that set the customer apart most, and what separated them from the next closest segment."""
    from assets.segments.model_store import load_model

    version = segment["model_version"]
    try:
        stored = load_model(models_dir, version)
        pipeline = stored.pipeline()
    except (OSError, ValueError, KeyError):
        return {"model_version": version, "available": False}
    cols = list(stored.metadata["feature_columns"])
    prep = _transformed_space(pipeline)
    scaler = pipeline.named_steps["scale"]
    raw = np.array([[np.nan if features.get(c) is None else float(features[c]) for c in cols]])
    z = prep.transform(raw)[0]
    pop_matrix = population.select(pl.col(c).cast(pl.Float64) for c in cols).to_numpy().astype(float)
    pop_z_median = np.median(prep.transform(pop_matrix), axis=0)
    show_population = population.height >= MIN_GROUP_FOR_STATISTICS
    show_segment = catalogue is not None and (catalogue.get("size") or 0) >= MIN_GROUP_FOR_STATISTICS
    segs = {s.segment_id: s for s in stored.state.segments}
    centre = {sid: scaler.transform(np.array([[s.centroid[c] for c in cols]]))[0] for sid, s in segs.items()}
    own = centre.get(segment["segment_id"])
    rows = []
    for j, c in enumerate(cols):
        value = features.get(c)
        median = population[c].median() if show_population else None
        rows.append(
            {
                "feature": c,
                "customer_value": value,
                "imputed": value is None,
                "segment_typical": catalogue.get(f"centroid_{c}") if show_segment else None,
                "population_median": float(median) if median is not None else None,
                "standardised_difference_from_median": round(float(z[j] - pop_z_median[j]), 3),
                "standardised_distance_to_segment": round(float(z[j] - own[j]), 3) if own is not None else None,
            }
        )
    ranked = sorted((r for r in rows if not r["imputed"]), key=lambda r: -abs(r["standardised_difference_from_median"]))
    out: dict[str, Any] = {
        "available": True,
        "model_version": version,
        "model_as_of": stored.metadata.get("as_of"),
        "window": stored.metadata.get("window"),
        "k": stored.metadata.get("k"),
        "method": "k-means on standardised features (log transform for levels and ratios); nearest centroid decides the segment",
        "feature_columns": cols,
        "features": rows,
        "top_features": [r["feature"] for r in ranked[:TOP_FEATURES]],
        "distance_to_segment": round(float(np.linalg.norm(z - own)), 3) if own is not None else None,
        "next_segment": None,
    }
    others = sorted(((float(np.linalg.norm(z - v)), sid) for sid, v in centre.items() if sid != segment["segment_id"]))
    if others and own is not None:
        dist, sid = others[0]
        margin = (z - centre[sid]) ** 2 - (z - own) ** 2  # > 0: this feature pulls towards the own segment
        order = [cols[j] for j in np.argsort(-margin) if margin[j] > 0][:2]
        s = segs[sid]
        out["next_segment"] = {
            "segment_id": sid,
            "name_fi": s.name_fi,
            "name_sv": s.name_sv,
            "name_en": s.name_en,
            "distance": round(dist, 3),
            "decisive_features": order,
        }
    return out


# =================================================================================================
# JSON and HTML
# =================================================================================================
def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, default=_json_default, ensure_ascii=False, indent=2)


def _esc(value: Any) -> str:
    return html.escape("–" if value is None else str(value))


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, Any]], lang: str) -> str:
    """columns: (header key in T or literal, function row -> text)."""
    if not rows:
        return f"<p class='none'>{_esc(t('none', lang))}</p>"
    head = "".join(f"<th>{_esc(T[k][lang] if k in T else k)}</th>" for k, _ in columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(fn(r))}</td>" for _, fn in columns) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _source_text(source: dict[str, Any], lang: str) -> str:
    system = source.get("system")
    if system == "crm":
        return t("src_crm", lang, file=source.get("file") or "–", line=source.get("line") or "–")
    if system == "vtj":
        return (
            t("src_vtj", lang, updated_on=fmt_date(source["updated_on"], lang))
            if source.get("updated_on")
            else t("src_vtj_none", lang)
        )
    return t("src_derived", lang)


def _identity_value(item: dict[str, Any], lang: str) -> str:
    value = item["value"]
    if item["field"] in ("customer_type", "language"):
        return code(value, lang)
    if item["field"] in ("marketing_ban", "safety_ban"):
        return fmt_bool(value, lang)
    if item["field"] in ("birth_date", "customer_since", "ended_on", "deceased_on"):
        return fmt_date(value, lang)
    return "–" if value is None else str(value)


def _identity_note(item: dict[str, Any], lang: str) -> str:
    notes = []
    if item.get("note") == "n_withheld":
        notes.append(t("n_withheld", lang, held=t("yes" if item.get("held_in_crm") else "no", lang)))
    elif item.get("note"):
        notes.append(t(item["note"], lang))
    if (
        item["field"] in ("email", "phone")
        and item.get("status") == "valid"
        and item.get("used_as")
        and item.get("used_as") != item["value"]
    ):
        notes.append(t("n_normalised", lang, value=item["used_as"]))
    if item["field"] == "phone" and item.get("mobile"):
        notes.append(t("n_mobile", lang))
    return "; ".join(notes)


def _segment_html(p: dict[str, Any], lang: str) -> str:
    if p["objected"]:
        when = fmt_ts(p["objection_event"]["occurred_at"], lang) if p.get("objection_event") else "–"
        return f"<p class='notice'>{_esc(t('p_objected', lang, when=when))}</p>"
    if not p["profiled"]:
        if not p["not_profiled_reasons"]:
            return f"<p>{_esc(t('p_not_run', lang))}</p>"
        return f"<p>{_esc(t('p_not_profiled', lang, reasons=', '.join(code(r, lang) for r in p['not_profiled_reasons'])))}</p>"
    seg = p["segment"]
    name, description = seg.get(f"name_{lang}", seg["segment_id"]), seg.get(f"description_{lang}", "–")
    parts = [f"<p class='segment'>{_esc(t('p_segment', lang, name=name, description=description))}</p>"]
    e = p.get("explanation")
    if not e or not e.get("available"):
        parts.append(f"<p>{_esc(t('p_no_explanation', lang))}</p>")
        return "".join(parts)
    labels = {c: FEATURE_LABELS.get(c, {}).get(lang, c) for c in e["feature_columns"]}
    window = e.get("window") or {}
    method = t(
        "p_method",
        lang,
        k=e["k"],
        n=len(e["feature_columns"]),
        start=fmt_date(window.get("start"), lang),
        end=fmt_date(window.get("end"), lang),
        features=", ".join(labels.values()),
    )
    parts.append(f"<p>{_esc(method)}</p>")
    by_name = {r["feature"]: r for r in e["features"]}
    items = []
    for name in e["top_features"]:
        r = by_name[name]
        diff = r["standardised_difference_from_median"]
        items.append(
            t(
                "p_top_item",
                lang,
                label=labels[name],
                value=fmt_feature(name, r["customer_value"], lang),
                median=fmt_feature(name, r["population_median"], lang)
                if r["population_median"] is not None
                else t("p_hidden", lang),
                direction=t("higher" if diff >= 0 else "lower", lang),
                sd=fmt_num(abs(diff), lang, 1),
            )
        )
    if items:
        parts.append(f"<p class='top'>{_esc(t('p_top', lang, items='; '.join(items)))}</p>")
    nxt = e.get("next_segment")
    if nxt and nxt["decisive_features"]:
        parts.append(
            f"<p>{_esc(t('p_next', lang, name=nxt[f'name_{lang}'], features=', '.join(labels[f] for f in nxt['decisive_features'])))}</p>"
        )
    parts.append(f"<h3>{_esc(t('h_features', lang))}</h3>")
    parts.append(
        _table(
            e["features"],
            [
                ("feature", lambda r: labels[r["feature"]]),
                (
                    "yours",
                    lambda r: (
                        t("p_imputed", lang) if r["imputed"] else fmt_feature(r["feature"], r["customer_value"], lang)
                    ),
                ),
                (
                    "segment_typical",
                    lambda r: (
                        fmt_feature(r["feature"], r["segment_typical"], lang)
                        if r["segment_typical"] is not None
                        else t("p_hidden", lang)
                    ),
                ),
                (
                    "population_median",
                    lambda r: (
                        fmt_feature(r["feature"], r["population_median"], lang)
                        if r["population_median"] is not None
                        else t("p_hidden", lang)
                    ),
                ),
                ("std_difference", lambda r: fmt_num(r["standardised_difference_from_median"], lang, 2)),
            ],
            lang,
        )
    )
    parts.append(f"<p>{_esc(t('p_effect', lang))}</p>")
    parts.append(
        f"<p class='small'>{_esc(t('p_model', lang, version=e['model_version'], as_of=fmt_date(e.get('model_as_of'), lang)))}</p>"
    )
    return "".join(parts)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:2px solid #2b5d8a;padding-bottom:.2rem}
h3{font-size:1.05rem;margin-top:1.2rem}table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #c8c8c8;padding:.25rem .45rem;text-align:left;vertical-align:top}th{background:#eef3f8}
.meta,.small{color:#555;font-size:.85rem}.notice{background:#fff6d6;border-left:4px solid #d9a400;padding:.5rem .8rem}
.segment{font-weight:600}.none{color:#666;font-style:italic}.scroll{overflow-x:auto}
@media print{body{margin:0}h2{page-break-after:avoid}}
"""


def _page_start(meta: dict[str, Any], data_as_of: Any = None) -> list[str]:
    """Head, title and the line saying whose report it is and when it was made."""
    lang = meta["language"]
    as_of = f" · {_esc(t('data_as_of', lang))}: {_esc(fmt_date(data_as_of, lang))}" if data_as_of else ""
    return [
        f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_esc(t('title', lang))}</title><style>{CSS}</style></head><body>",
        f"<h1>{_esc(t('title', lang))}</h1>",
        f"<p class='meta'>{_esc(t('customer_id', lang))}: {_esc(meta['customer_id'])} · {_esc(t('generated', lang))}: {_esc(fmt_ts(meta['generated_at'], lang))}{as_of}</p>",
    ]


def render_erased_html(report: dict[str, Any]) -> str:
    """The erased customer's page: the erasure date, the restricted invoices, the suppression record."""
    meta, erasure = report["report"], report["erasure"]
    lang = meta["language"]
    d = lambda v: fmt_date(v, lang)  # noqa: E731
    inv, sup, proc = erasure["retained_invoices"], erasure["suppression_record"], report["processing"]
    out = _page_start(meta)
    out.append(f"<p class='notice'>{_esc(t('e_erased', lang, date=d(erasure['erased_on'])))}</p>")
    out.append(f"<h2>{_esc(t('h_still_held', lang))}</h2><h3>{_esc(t('h_retained_invoices', lang))}</h3>")
    if inv["items"]:
        rule = inv["retention"]
        out.append(
            f"<p>{_esc(t('e_invoices', lang, n=len(inv['items']), period=fmt_period(rule['period'], lang), after=rule['after'][lang], until=d(inv['kept_until'])))}</p>"
        )
        out.append(
            _table(
                inv["items"],
                [
                    ("invoice_id", lambda r: r["invoice_id"]),
                    ("contract_id", lambda r: r["contract_id"]),
                    ("issued_on", lambda r: d(r["issued_on"])),
                    ("due_on", lambda r: d(r["due_on"])),
                    ("amount_eur", lambda r: fmt_num(r["amount_eur"], lang, 2)),
                    ("paid_on", lambda r: d(r["paid_on"])),
                    ("kept_until", lambda r: d(r["kept_until"])),
                    ("source", lambda r: t("src_billing", lang, file=r.get("delivery_file") or "–")),
                ],
                lang,
            )
        )
    else:
        out.append(f"<p>{_esc(t('e_no_invoices', lang))}</p>")
    out.append(f"<h3>{_esc(t('h_suppression', lang))}</h3><p>{_esc(t('e_suppression', lang))}</p>")
    out.append(
        _table(
            [
                {"k": "s_pseudonyms", "v": sup["pseudonyms"]},
                {"k": "s_erased_on", "v": d(sup["erased_on"])},
                {"k": "s_points", "v": sup["metering_point_periods"]},
            ],
            [("field", lambda r: t(r["k"], lang)), ("value", lambda r: r["v"])],
            lang,
        )
    )
    out.append(f"<p>{_esc(t('e_nothing_else', lang))}</p>")
    out.append(
        f"<p>{_esc(t('controller', lang))}: {_esc(proc['controller']['name'][lang])}, {_esc(proc['controller'].get('contact', ''))}</p>"
    )
    out.append(
        f"<h2>{_esc(t('h_rights', lang))}</h2><ul>"
        + "".join(f"<li>{_esc(x)}</li>" for x in proc["rights"][lang])
        + "</ul>"
    )
    out.append(f"<p class='small'>{_esc(proc['version'])} · {_esc(meta['policy_version'])}</p></body></html>")
    return "".join(out)


def render_html(report: dict[str, Any]) -> str:
    meta = report["report"]
    lang = meta["language"]
    L = lambda d: d[lang]  # noqa: E731 - a fi/sv/en text
    d = lambda v: fmt_date(v, lang)  # noqa: E731
    out = _page_start(meta, meta["audiences_as_of"] or meta["latest_delivery_processed"])
    out.append(f"<p>{_esc(t('intro', lang))}</p>")
    if meta["register_only"]:
        out.append(f"<p class='notice'>{_esc(t('n_register_only', lang))}</p>")
    elif not meta["in_current_customer_register"]:
        out.append(f"<p class='notice'>{_esc(t('n_not_current', lang))}</p>")

    out.append(f"<h2>{_esc(t('h_identity', lang))}</h2>")
    out.append(
        _table(
            report["identity"],
            [
                ("field", lambda r: t(f"f_{r['field']}", lang)),
                ("value", lambda r: _identity_value(r, lang)),
                ("source", lambda r: _source_text(r["source"], lang)),
                ("note", lambda r: _identity_note(r, lang)),
            ],
            lang,
        )
    )
    vtj = report["population_register"]
    if vtj:
        out.append(f"<h3>{_esc(t('h_vtj', lang))}</h3>")
        vtj_rows = [
            ("f_personal_id", vtj["personal_id"]),
            ("f_deceased_on", d(vtj["deceased_on"]) if vtj["deceased_on"] else "–"),
            ("f_marketing_ban", fmt_bool(vtj["marketing_ban"], lang)),
            ("f_safety_ban", fmt_bool(vtj["safety_ban"], lang)),
        ]
        if not vtj["safety_ban"]:
            vtj_rows.append(
                (
                    "f_address",
                    ", ".join(v for v in (vtj["street_address"], vtj["postal_code"], vtj["city"]) if v) or "–",
                )
            )
        out.append(
            _table(
                [{"k": k, "v": v} for k, v in vtj_rows],
                [
                    ("field", lambda r: t(r["k"], lang)),
                    ("value", lambda r: r["v"]),
                    ("source", lambda r: t("src_vtj", lang, updated_on=d(vtj["updated_on"]))),
                ],
                lang,
            )
        )

    out.append(f"<h2>{_esc(t('h_contracts', lang))}</h2>")
    out.append(
        _table(
            report["contracts"],
            [
                ("contract_id", lambda r: r["contract_id"]),
                ("metering_point_id", lambda r: r["metering_point_id"]),
                ("product_code", lambda r: r["product_code"]),
                ("contract_type", lambda r: code(r["contract_type"], lang)),
                ("start_date", lambda r: d(r["start_date"])),
                ("end_date", lambda r: d(r["end_date"])),
                ("site_type", lambda r: code(r["site_type"], lang)),
                ("heating", lambda r: code(r["heating"], lang)),
                ("source", lambda r: t("src_contracts", lang, file=r.get("snapshot_file") or "–")),
            ],
            lang,
        )
    )

    out.append(f"<h2>{_esc(t('h_consumption', lang))}</h2><p class='small'>{_esc(t('src_datahub', lang))}</p>")
    out.append(
        _table(
            report["consumption_monthly"],
            [
                ("metering_point_id", lambda r: r["metering_point_id"]),
                ("month", lambda r: r["month"]),
                ("kwh", lambda r: fmt_num(r["kwh"], lang, 1)),
                ("days_with_data", lambda r: r["days_with_data"]),
                ("readings_estimated", lambda r: r["readings_estimated"]),
                ("readings_missing", lambda r: r["readings_missing"]),
            ],
            lang,
        )
    )

    inv = report["invoices"]
    out.append(f"<h2>{_esc(t('h_invoices', lang))}</h2>")
    out.append(
        _table(
            inv["items"],
            [
                ("invoice_id", lambda r: r["invoice_id"]),
                ("contract_id", lambda r: r["contract_id"]),
                ("issued_on", lambda r: d(r["issued_on"])),
                ("due_on", lambda r: d(r["due_on"])),
                ("amount_eur", lambda r: fmt_num(r["amount_eur"], lang, 2)),
                ("paid_on", lambda r: d(r["paid_on"])),
                ("days_late", lambda r: r["days_late"]),
                ("reminders", lambda r: r["reminders"]),
                ("in_collection", lambda r: fmt_bool(r["in_collection"], lang)),
                ("source", lambda r: t("src_billing", lang, file=r.get("delivery_file") or "–")),
            ],
            lang,
        )
    )
    if inv["payment_features"]:
        out.append(f"<h3>{_esc(t('h_payment_features', lang))}</h3>")
        out.append(
            _table(
                [{"k": k, "v": v} for k, v in inv["payment_features"].items()],
                [
                    ("feature", lambda r: FEATURE_LABELS[r["k"]][lang]),
                    ("value", lambda r: fmt_feature(r["k"], r["v"], lang)),
                ],
                lang,
            )
        )

    cons = report["consents"]
    out.append(f"<h2>{_esc(t('h_consents', lang))}</h2><h3>{_esc(t('h_events', lang))}</h3>")
    out.append(
        _table(
            cons["events"],
            [
                ("occurred_at", lambda r: fmt_ts(r["occurred_at"], lang)),
                ("purpose", lambda r: code(r["purpose"], lang)),
                ("channel", lambda r: code(r["channel"], lang) if r["channel"] else t("all_channels", lang)),
                ("action", lambda r: code(r["action"], lang)),
                ("source", lambda r: t("src_consent", lang, source=code(r["source"], lang), file=r["file"])),
                ("wording_version", lambda r: r["wording_version"]),
                ("evidence_ref", lambda r: r["evidence_ref"]),
                ("event_id", lambda r: r["event_id"]),
            ],
            lang,
        )
    )
    out.append(f"<h3>{_esc(t('h_state', lang))}</h3>")
    out.append(
        _table(
            cons["state"],
            [
                ("purpose", lambda r: code(r["purpose"], lang)),
                ("channel", lambda r: code(r["channel"], lang) if r["channel"] else t("all_channels", lang)),
                ("state", lambda r: code(r["state"], lang)),
                ("occurred_at", lambda r: fmt_ts(r["occurred_at"], lang)),
                ("event_id", lambda r: r["event_id"]),
            ],
            lang,
        )
    )
    out.append(f"<h3>{_esc(t('h_channel_effect', lang))}</h3>")
    out.append(
        _table(
            cons["marketing_channels"],
            [
                ("channel", lambda r: code(r["channel"], lang)),
                ("legal_basis", lambda r: t(f"basis_{r['legal_basis']}", lang)),
                ("state", lambda r: code(r["state"], lang) if r["state"] else t("consent_no_event", lang)),
                (
                    "effect",
                    lambda r: t("consent_allowed" if r["allowed_by_consent_log"] else "consent_not_allowed", lang),
                ),
            ],
            lang,
        )
    )

    out.append(f"<h2>{_esc(t('h_profiling', lang))}</h2>")
    out.append(_segment_html(report["profiling"], lang))

    aud = report["audiences"]
    out.append(f"<h2>{_esc(t('h_audiences', lang))}</h2><h3>{_esc(t('h_history', lang))}</h3>")
    out.append(
        _table(
            aud["history"],
            [
                ("channel", lambda r: code(r["channel"], lang)),
                ("legal_basis", lambda r: code(r["legal_basis"], lang)),
                ("first_day", lambda r: d(r["first_day"])),
                ("last_day", lambda r: d(r["last_day"])),
                ("days", lambda r: r["days"]),
                ("current", lambda r: fmt_bool(r["current"], lang)),
                ("segment", lambda r: "–" if r["segment_id"] is None else r["segment_id"]),
            ],
            lang,
        )
        if aud["history"]
        else f"<p>{_esc(t('a_none', lang))}</p>"
    )
    out.append(f"<h3>{_esc(t('h_exclusions', lang))}</h3>")
    out.append(
        _table(
            aud["exclusions"],
            [("channel", lambda r: code(r["channel"], lang)), ("reason", lambda r: code(r["reason"], lang))],
            lang,
        )
    )
    if aud["renewal_offers"]:
        out.append(f"<h3>{_esc(t('h_renewal', lang))}</h3>")
        out.append(
            _table(
                aud["renewal_offers"],
                [
                    ("contract_id", lambda r: r["contract_id"]),
                    ("end_date", lambda r: d(r["end_date"])),
                    ("channel", lambda r: code(r["channel"], lang)),
                    ("reason", lambda r: code(r["reason"], lang)),
                ],
                lang,
            )
        )

    out.append(f"<h2>{_esc(t('h_contacts', lang))}</h2>")
    out.append(
        _table(
            report["contact_history"],
            [
                ("sent_at", lambda r: fmt_ts(r["sent_at"], lang)),
                ("channel", lambda r: code(r["channel"], lang)),
                ("campaign_id", lambda r: r["campaign_id"]),
                ("kind", lambda r: code(r["kind"], lang)),
            ],
            lang,
        )
    )
    if report["rejected_records"]:
        out.append(f"<h2>{_esc(t('h_rejected', lang))}</h2>")
        out.append(
            _table(
                report["rejected_records"],
                [
                    ("source", lambda r: r["source"]),
                    ("file", lambda r: r["file"]),
                    ("line", lambda r: r["line"]),
                    ("rule", lambda r: r["rule"]),
                ],
                lang,
            )
        )

    proc = report["processing"]
    out.append(f"<h2>{_esc(t('h_processing', lang))}</h2>")
    out.append(
        f"<p>{_esc(t('controller', lang))}: {_esc(L(proc['controller']['name']))}, {_esc(proc['controller'].get('contact', ''))}</p>"
    )
    out.append(f"<h3>{_esc(t('h_purposes', lang))}</h3>")
    out.append(
        _table(
            proc["purposes"],
            [
                ("purpose", lambda r: L(r["name"])),
                ("legal_basis", lambda r: L(r["legal_basis"])),
                ("description", lambda r: L(r["description"])),
            ],
            lang,
        )
    )
    out.append(f"<h3>{_esc(t('h_recipients', lang))}</h3>")
    out.append(
        _table(
            proc["recipients"], [("name", lambda r: L(r["name"])), ("description", lambda r: L(r["description"]))], lang
        )
    )
    out.append(f"<h3>{_esc(t('h_sources', lang))}</h3>")
    out.append(_table(proc["sources"], [("name", lambda r: L(r["name"]))], lang))
    out.append(f"<h3>{_esc(t('h_retention', lang))}</h3>")
    out.append(
        _table(
            proc["retention"],
            [
                ("name", lambda r: L(r["name"])),
                ("period", lambda r: fmt_period(r["period"], lang) + (f" {L(r['after'])}" if r.get("after") else "")),
            ],
            lang,
        )
    )
    out.append(
        f"<h2>{_esc(t('h_rights', lang))}</h2><ul>"
        + "".join(f"<li>{_esc(x)}</li>" for x in proc["rights"][lang])
        + "</ul>"
    )
    out.append(f"<p class='small'>{_esc(proc['version'])} · {_esc(meta['policy_version'])}</p></body></html>")
    return "".join(out)


def counts(report: dict[str, Any]) -> dict[str, int]:
    if report["report"]["erased"]:
        sup = report["erasure"]["suppression_record"]
        return {
            "invoices_kept_restricted": len(report["erasure"]["retained_invoices"]["items"]),
            "suppression_pseudonyms": sup["pseudonyms"],
            "suppressed_metering_point_periods": sup["metering_point_periods"],
        }
    return {
        "contracts": len(report["contracts"]),
        "metering_points": len(report["metering_points"]),
        "consumption_months": len({r["month"] for r in report["consumption_monthly"]}),
        "invoices": len(report["invoices"]["items"]),
        "consent_events": len(report["consents"]["events"]),
        "audiences": len(report["audiences"]["history"]),
        "contacts": len(report["contact_history"]),
        "rejected_records": len(report["rejected_records"]),
    }


# =================================================================================================
# writing
# =================================================================================================
def prepare_out_dir(out: Path, default: bool) -> Path:
    """Create the directory owner-only. An existing directory the operator named keeps its mode
    (never chmod someone's /tmp); the default one is always set back to 0700."""
    if not out.exists():
        out.mkdir(parents=True, mode=0o700)
        os.chmod(out, 0o700)
    elif default:
        os.chmod(out, 0o700)
    elif out.stat().st_mode & 0o077:
        print(f"note: {out} is readable by others; the report files themselves are owner-only (0600)", file=sys.stderr)
    return out


def _write_private(path: Path, text: str) -> None:
    """Write 0600 from the first byte (temp file in the same directory, renamed into place)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: where `lupa sar` keeps reports unless told otherwise (`--out`); erasure deletes a customer's from here
def default_reports_dir() -> Path:
    from pipelines.settings import REPO, _path

    return _path("LUPA_VAR_DIR", REPO / "var") / "access_reports"


def report_key(identifier: str) -> str:
    """The name part that says whose report a file is: a keyed pseudonym of the customer id (or of the
    identity code, for a register-only person), never the identifier itself; erasure finds the
    customer's reports by it (`stored_reports`)."""
    from assets.storage import suppression

    return suppression.pseudonym(identifier)[:REPORT_KEY_LENGTH]


REPORT_KEY_LENGTH = 32


def stored_reports(out_dir: Path, pseudonyms: list[str], customer_ids: list[str] = ()) -> list[Path]:
    """The report files in `out_dir` of the people with these pseudonyms (of their customer id and
    identity codes, as the suppression record and the erasure audit log hold them), and those
    written before reports were named by pseudonym, which carry the customer id itself."""
    if not out_dir.is_dir():
        return []
    keys = [p[:REPORT_KEY_LENGTH] for p in pseudonyms] + list(customer_ids)
    return sorted({p for key in keys for p in out_dir.glob(f"access_report_{key}_*") if p.suffix in (".json", ".html")})


def delete_stored_reports(pseudonyms: list[str], customer_ids: list[str] = (), out_dir: Path | None = None) -> int:
    """Delete the stored access reports of these people (see `stored_reports`); returns the files removed."""
    removed = 0
    for path in stored_reports(out_dir or default_reports_dir(), pseudonyms, customer_ids):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def write_report(report: dict[str, Any], out_dir: Path, personal_id: str | None = None) -> tuple[Path, Path]:
    stamp = report["report"]["generated_at"].astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    meta = report["report"]
    subject = meta["customer_id"] or personal_id
    who = report_key(subject) if subject else "erased"
    stem = f"access_report_{who}_{stamp}"
    n = 1
    while (out_dir / f"{stem}.json").exists() or (out_dir / f"{stem}.html").exists():
        n += 1
        stem = f"access_report_{who}_{stamp}_{n}"
    json_path, html_path = out_dir / f"{stem}.json", out_dir / f"{stem}.html"
    _write_private(json_path, to_json(report) + "\n")
    _write_private(html_path, render_erased_html(report) if meta["erased"] else render_html(report))
    return json_path, html_path


# =================================================================================================
# command line
# =================================================================================================
def _read_personal_id() -> str:
    if sys.stdin is None:
        raise AccessReportError("no standard input to read the identity code from")
    if sys.stdin.isatty():
        return getpass.getpass("personal identity code (not echoed): ")
    return sys.stdin.readline()


def run_sar(
    storage: LupaStorage,
    out_dir: Path,
    *,
    customer_id: str | None = None,
    personal_id: str | None = None,
    language: str | None = None,
    default_out: bool = False,
) -> tuple[int, list[str]]:
    """The command without argument parsing: returns (exit code, lines to print)."""
    match = find_customers(storage, customer_id=customer_id, personal_id=personal_id)
    matched_by = "customer_id" if customer_id is not None else "personal_id"
    if not match.customer_ids and not match.register_only and not match.erased:
        who = f"customer id {customer_id.strip()}" if customer_id is not None else "the personal identity code given"
        return EXIT_UNKNOWN, [
            f"no customer found for {who}: no data is held under it in the warehouse; no report was written"
        ]
    if match.erased and not match.erased.complete:
        raise AccessReportError(
            f"the erasure of this customer begun on {match.erased.erased_on.isoformat()} was interrupted, so some zones may "
            "still hold them: run `lupa erase` for the customer again to finish it; no report was written"
        )
    policy = load_policy()
    register = load_processing_register(policy=policy)
    prepare_out_dir(out_dir, default_out)
    if match.erased:
        report = build_erased_report(
            match.erased, language=language, matched_by=matched_by, register=register, policy=policy
        )
        json_path, html_path = write_report(report, out_dir, personal_id)
        held = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts(report).items())
        return EXIT_OK, [
            str(json_path),
            str(html_path),
            f"  erased on {match.erased.erased_on.isoformat()}; still held: {held}",
        ]
    lines = []
    targets = match.customer_ids or [None]
    for cid in targets:
        report = build_report(
            storage,
            cid,
            personal_id=personal_id,
            language=language,
            matched_by=matched_by,
            register=register,
            policy=policy,
        )
        json_path, html_path = write_report(report, out_dir, personal_id)
        lines += [
            str(json_path),
            str(html_path),
            "  " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts(report).items()),
        ]
    return EXIT_OK, lines


def cmd_sar(args: argparse.Namespace) -> int:
    from pipelines.settings import load_settings

    if args.personal_id is not None and args.personal_id != "-":
        # never echo what was given: it may be an identity code typed on the command line
        print(
            "lupa sar: --personal-id takes only '-': the identity code is read from standard input, never from the command line",
            file=sys.stderr,
        )
        return EXIT_USAGE
    settings = load_settings()
    storage = LupaStorage(landing_dir=str(settings.landing_dir), data_dir=str(settings.data_dir), env=settings.env)
    default_out = not args.out
    out_dir = Path(args.out) if args.out else default_reports_dir()
    try:
        personal_id = normalise_personal_id(_read_personal_id()) if args.personal_id == "-" else None
        code_, lines = run_sar(
            storage,
            out_dir,
            customer_id=args.customer_id,
            personal_id=personal_id,
            language=args.language,
            default_out=default_out,
        )
    except AccessReportError as exc:
        print(f"lupa sar: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stream = sys.stdout if code_ == EXIT_OK else sys.stderr
    for line in lines:
        print(line, file=stream)
    return code_


def add_sar_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sar",
        help="right of access (GDPR Art. 15): everything held about one customer, as JSON and HTML in their language",
        description="Writes a JSON and an HTML access report (owner-only files) and prints only their paths and counts.",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer-id", help="customer number, e.g. C1234567")
    who.add_argument(
        "--personal-id",
        metavar="-",
        help="'-': read the personal identity code from standard input (never give it on the command line)",
    )
    p.add_argument("--out", help="output directory (default $LUPA_VAR_DIR/access_reports, created 0700)")
    p.add_argument("--language", choices=LANGS, help="report language (default: the customer's own)")
    p.set_defaults(fn=cmd_sar)
    return p


def main(argv: list[str] | None = None) -> int:
    """`python -m pipelines.access_report ARGS` == `lupa sar ARGS`."""
    parser = argparse.ArgumentParser(prog="lupa")
    add_sar_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sar", *(sys.argv[1:] if argv is None else argv)])
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
