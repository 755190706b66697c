"""Identifier normalisation and hashing for Google Customer Match and Meta Custom Audiences.

Each case asserts the normal form and its SHA-256 hex literally, so a reader sees both. Inputs are
the worked examples in the platforms' documentation where there is one:
- Google Data Manager API "Format user data" (gmail/non-gmail emails, `(800)555-0100`), the
  hashes in Google's Data Manager client-library tests (`alexz@example.com`, `+18005550100`,
  `Givenname`, `Familyname`), and Google's Customer Match CSV template (`zoë`, `pérez`).
- Meta's customer-list help page (`your.name@gmail.com`, `username@hotmail.co.uk`,
  `+44 844 412 4653`, `1-234-567-8910`, `John`, `Émilie`, `Smith`) and the Custom Audiences
  "Hashing and normalizing data" rules (US zip 5 digits, UK Area/District/Sector, ...).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from ml.activation.hashing import (
    GOOGLE_FIELDS,
    META_FIELDS,
    google_country,
    google_email,
    google_first_name,
    google_last_name,
    google_phone,
    google_zip,
    hash_series,
    map_series,
    meta_birth_year,
    meta_city,
    meta_country,
    meta_email,
    meta_gender,
    meta_name,
    meta_phone,
    meta_state,
    meta_zip,
    prepare,
    sha256_hex,
)

# --- Google Customer Match ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal", "digest"),
    [
        # Google's gmail example: dots and the +suffix go.
        (
            "cloudy.sanfrancisco+shopping@gmail.com",
            "cloudysanfrancisco@gmail.com",
            "223ebda6f6889b1494551ba902d9d381daf2f642bae055888e96343d53e9f9c4",
        ),
        # Google's non-gmail example: only lower-cased, dots and plus sign kept.
        (
            "user.name+NYC@Example.com",
            "user.name+nyc@example.com",
            "f109a2a632fbcea5fc82049f50beed3d8621bf9034399f437fb622222acccdac",
        ),
        (
            "  Jefferson.LOVES.Hiking@googlemail.com ",
            "jeffersonloveshiking@googlemail.com",
            "2824967181c781aced84c32bf8bb51fc6401202eeff88263776f63c99df9314c",
        ),
        # Hash published in Google's Data Manager library tests.
        (
            "alexz@example.com",
            "alexz@example.com",
            "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a",
        ),
    ],
)
def test_google_email(raw: str, normal: str, digest: str) -> None:
    assert google_email(raw) == normal
    assert sha256_hex(normal) == digest
    assert prepare(GOOGLE_FIELDS["Email"], raw) == digest


@pytest.mark.parametrize(
    ("raw", "region", "normal", "digest"),
    [
        # Google's example; hash published in Google's Data Manager library tests.
        (
            "(800)555-0100",
            "US",
            "+18005550100",
            "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30",
        ),
        (
            "+44 20 7946 0018",
            None,
            "+442079460018",
            "faad3b10918e39b5f4d5334f1e1e128719608e8bd3ad3b963dc30187b4518e23",
        ),
        (
            "(020) 7946 0018",
            "GB",
            "+442079460018",
            "faad3b10918e39b5f4d5334f1e1e128719608e8bd3ad3b963dc30187b4518e23",
        ),
        (
            "+1 (650) 253-0000",
            "GB",  # an explicit country code beats the default region
            "+16502530000",
            "3ad9f10d73829a714b1383221691d4dbf08484f3ceeae884f53053a1c7bb0a92",
        ),
    ],
)
def test_google_phone_is_e164_with_plus(
    raw: str, region: str | None, normal: str, digest: str
) -> None:
    assert google_phone(raw, region) == normal
    assert sha256_hex(normal) == digest
    assert prepare(GOOGLE_FIELDS["Phone"], raw, region) == digest


@pytest.mark.parametrize(
    ("raw", "normal", "digest"),
    [
        # Google's Data Manager library test input and hash.
        (
            "Givenname",
            "givenname",
            "128a07bfe2df877c52076e60d7774cf5baaa046c5a6c48daf30ff43ecca2f814",
        ),
        # Accents kept, as in Google's Customer Match template (zoë), prefix dropped.
        (" Mrs. Zoë ", "zoë", "2752b88686847fa5c86f47b94ce652b7b3f22a91c37617d451a4db9afa431450"),
        ("Dr John", "john", "96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d000cec607a"),
        # A name that merely starts like a title is left alone.
        ("Drew", "drew", "c850c75d30a9360f81eff0a01abcf9125ba034ef9a2dd9f95bbc073a60032299"),
    ],
)
def test_google_first_name(raw: str, normal: str, digest: str) -> None:
    assert google_first_name(raw) == normal
    assert sha256_hex(normal) == digest


@pytest.mark.parametrize(
    ("raw", "normal", "digest"),
    [
        # Google's Data Manager library test input and hash.
        (
            "Familyname",
            "familyname",
            "77762c287e61ce065bee5c15464012c6fbe088398b8057627d5577249430d574",
        ),
        ("Pérez, Jr.", "pérez", "6654977d57dddd3c0329ca741b109ef6cd6430bedd00008aad213df25683d77f"),
        (
            "quinn, jr., dds",
            "quinn",
            "c512ca0c5c1e71be19f3356821e56732b5fb3ac894b0dbc5846d0b6920106fb3",
        ),
        ("Smith III", "smith", "6627835f988e2c5e50533d491163072d3f4f41f5c8b04630150debb3722ca2dd"),
        # No punctuation (OfflineUserAddressInfo / AddressInfo field rules).
        (
            "O'Brien-Smith",
            "obriensmith",
            "16765783f9c8c8a3accf27f1abb877688cb5904c21a4a7afb5f125bcfcb246ba",
        ),
    ],
)
def test_google_last_name(raw: str, normal: str, digest: str) -> None:
    assert google_last_name(raw) == normal
    assert sha256_hex(normal) == digest


def test_google_names_that_are_only_a_title_or_suffix_give_none() -> None:
    assert google_first_name("Mr.") is None
    assert google_last_name(", Jr.") is None
    assert google_last_name("Jr.") is None


def test_google_country_and_zip_are_not_hashed() -> None:
    assert google_country(" us ") == "US"
    assert google_country("uk") == "GB"
    assert google_zip(" WC2H 8LG ") == "WC2H 8LG"
    assert prepare(GOOGLE_FIELDS["Country"], "sg") == "SG"
    assert prepare(GOOGLE_FIELDS["Zip"], " 94016 ") == "94016"
    assert not GOOGLE_FIELDS["Country"].hashed
    assert not GOOGLE_FIELDS["Zip"].hashed
    assert list(GOOGLE_FIELDS) == ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"]


# --- Meta Custom Audiences ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal", "digest"),
    [
        # Meta's example: no gmail rewrite, the dot stays.
        (
            "your.name@gmail.com",
            "your.name@gmail.com",
            "1c26f08bba2c87e8db547da81c7071924be289ebcf3e56709343ba86cc7c24f8",
        ),
        (
            " Username@Hotmail.co.uk ",
            "username@hotmail.co.uk",
            "2414268fd08ef12483bf8b4fa4cee5b4f739ccf1b217d00ed7097a1e3084c8fb",
        ),
    ],
)
def test_meta_email(raw: str, normal: str, digest: str) -> None:
    assert meta_email(raw) == normal
    assert sha256_hex(normal) == digest
    assert prepare(META_FIELDS["email"], raw) == digest


def test_meta_does_not_rewrite_gmail_but_google_does() -> None:
    raw = "Cloudy.SanFrancisco+shopping@gmail.com"
    assert meta_email(raw) == "cloudy.sanfrancisco+shopping@gmail.com"
    assert google_email(raw) == "cloudysanfrancisco@gmail.com"


@pytest.mark.parametrize(
    ("raw", "region", "normal", "digest"),
    [
        # Meta's example.
        (
            "+44 844 412 4653",
            None,
            "448444124653",
            "dc008fda46e2e64002cf2f82a4906236282d431c4f75e5b60bfe79fc48546383",
        ),
        (
            "1-234-567-8910",
            "US",
            "12345678910",
            "63640264849a87c90356129d99ea165e37aa5fabc1fea46906df1a7ca50db492",
        ),
        # The trunk 0 goes, the country code comes first, no "+".
        (
            "(020) 7946 0018",
            "GB",
            "442079460018",
            "99a4599795d24445a5be21117f375c1bbe9e795daf7f62666686ce081e1f32dc",
        ),
        (
            "+44 20 7946 0018",
            None,
            "442079460018",
            "99a4599795d24445a5be21117f375c1bbe9e795daf7f62666686ce081e1f32dc",
        ),
        (
            "+1 (650) 253-0000",
            None,
            "16502530000",
            "67d3cb9e9b1b64b913a5f2508beac167cfa7d3fb943f6a52e6767392d425a536",
        ),
    ],
)
def test_meta_phone_is_digits_with_country_code(
    raw: str, region: str | None, normal: str, digest: str
) -> None:
    assert meta_phone(raw, region) == normal
    assert sha256_hex(normal) == digest


@pytest.mark.parametrize(
    ("raw", "normal", "digest"),
    [
        ("John", "john", "96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d000cec607a"),
        ("Smith", "smith", "6627835f988e2c5e50533d491163072d3f4f41f5c8b04630150debb3722ca2dd"),
        # Meta accepts accents; special characters are hashed as UTF-8 (é is c3 a9).
        ("Émilie", "émilie", "2863487194ad92314c0d76b8e4fe04d127789e79c94081329c682b7beea2bf6c"),
        (
            "O'Brien-Smith",
            "obriensmith",
            "16765783f9c8c8a3accf27f1abb877688cb5904c21a4a7afb5f125bcfcb246ba",
        ),
    ],
)
def test_meta_names_are_letters_only(raw: str, normal: str, digest: str) -> None:
    assert meta_name(raw) == normal
    assert sha256_hex(normal) == digest
    assert prepare(META_FIELDS["fn"], raw) == digest


def test_meta_name_is_the_same_for_composed_and_decomposed_accents() -> None:
    assert meta_name("E\u0301milie") == meta_name("\u00c9milie") == "émilie"


@pytest.mark.parametrize(
    ("function", "args", "normal", "digest"),
    [
        (
            meta_city,
            ("Menlo Park",),
            "menlopark",
            "0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685",
        ),
        (
            meta_city,
            ("São Paulo",),
            "saopaulo",
            "8f7f2f7ccd3f2898cf4850905346e8fb333d00aac1c974f8f37326e068cf7b1e",
        ),
        (
            meta_state,
            ("CA",),
            "ca",
            "6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126",
        ),
        (
            meta_zip,
            ("94025-1234", "US"),
            "94025",
            "b9a9cf3cd3723a2e91b7c23ecf68456e872b6e5d86e5cab7f3d45a7302da32c7",
        ),
        (
            meta_zip,
            ("SW1A 1AA", "GB"),
            "sw1a1",
            "949af780a19e6f6d4b99d7044743348dbbb7ab2245fe146863573b23d02c5890",
        ),
        (
            meta_country,
            ("US",),
            "us",
            "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621",
        ),
        (
            meta_birth_year,
            ("1984-03-02",),
            "1984",
            "4dea5c7cb70f50322ec9d734aa4aa078be9227c05251e18991c596f387552370",
        ),
        (
            meta_gender,
            ("F",),
            "f",
            "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111",
        ),
    ],
)
def test_meta_location_and_demographics(function, args, normal: str, digest: str) -> None:
    assert function(*args) == normal
    assert sha256_hex(normal) == digest


def test_meta_zip_and_demographic_details() -> None:
    assert meta_zip("1000-001") == "1000"  # the part before a dash, any country
    assert meta_zip("941", "US") is None  # a US zip needs 5 digits
    assert meta_zip("sw1a 1", "GB") == "sw1a1"  # already a sector
    assert meta_birth_year(1984) == "1984"
    assert meta_birth_year(date(1984, 3, 2)) == "1984"
    assert meta_birth_year("1899") is None
    assert meta_birth_year(str(date.today().year + 1)) is None
    assert meta_gender("male") == "m"
    assert meta_gender("x") is None
    assert all(rule.hashed for rule in META_FIELDS.values())


# --- Empty and invalid input never gets hashed -------------------------------------------


@pytest.mark.parametrize(
    ("function", "raw"),
    [
        (google_email, ""),
        (google_email, "   "),
        (google_email, None),
        (google_email, "not-an-email"),
        (google_email, "john smith@example.com"),
        (google_email, "...+promo@gmail.com"),  # nothing left after the gmail rewrite
        (google_phone, "12345"),
        (google_phone, "(020) 7946 0018"),  # no country code and no default region
        (google_phone, "phone"),
        (google_first_name, " "),
        (google_last_name, None),
        (google_country, "United Kingdom"),
        (google_country, "ZZ"),
        (google_zip, "  "),
        (meta_email, "@example.com"),
        (meta_phone, ""),
        (meta_name, "123 !!"),
        (meta_city, "  "),
        (meta_zip, float("nan")),
        (meta_country, "usa"),
        (meta_birth_year, "someday"),
    ],
)
def test_empty_or_invalid_input_gives_none(function, raw: object) -> None:
    assert function(raw) is None


def test_empty_string_is_never_hashed() -> None:
    assert sha256_hex("") is None
    assert sha256_hex(None) is None
    assert prepare(GOOGLE_FIELDS["Email"], "  ") is None
    assert prepare(META_FIELDS["phone"], "n/a") is None


# --- pandas helpers ----------------------------------------------------------------------


def test_map_and_hash_series_keep_the_index_and_leave_missing_values_empty() -> None:
    emails = pd.Series(
        ["A.B+x@gmail.com", None, "bad", "a.b+x@GMAIL.com", float("nan")],
        index=[10, 11, 12, 13, 14],
        name="email",
    )
    normal = map_series(google_email, emails)
    assert normal.tolist() == ["ab@gmail.com", None, None, "ab@gmail.com", None]
    assert normal.index.tolist() == [10, 11, 12, 13, 14]
    hashed = hash_series(google_email, emails)
    assert hashed.tolist() == [
        sha256_hex("ab@gmail.com"),
        None,
        None,
        sha256_hex("ab@gmail.com"),
        None,
    ]


def test_map_series_passes_a_per_row_region() -> None:
    phones = pd.Series(["(020) 7946 0018", "(650) 253-0000", "(650) 253-0000"])
    countries = pd.Series(["GB", "US", None])
    assert map_series(google_phone, phones, countries).tolist() == [
        "+442079460018",
        "+16502530000",
        None,
    ]
    zips = pd.Series(["SW1A 1AA", "94025-1234"])
    assert hash_series(meta_zip, zips, pd.Series(["GB", "US"])).tolist() == [
        "949af780a19e6f6d4b99d7044743348dbbb7ab2245fe146863573b23d02c5890",
        "b9a9cf3cd3723a2e91b7c23ecf68456e872b6e5d86e5cab7f3d45a7302da32c7",
    ]
