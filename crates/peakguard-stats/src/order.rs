//! The order a confirmation page reports, in the companion plugin's `X-Peakguard-Order`
//! field: `id=1234; total=59.90; currency=EUR`. Read off the request path; every value is
//! bounded, a field that does not parse counts as no order.

/// Largest total taken (in cents): a confirmed order above this is a mistake.
const MAX_CENTS: u64 = 100_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The shop's order id (at most 40 characters): an order counts once per day.
    pub id: String,
    pub cents: u64,
    /// ISO 4217, upper case.
    pub currency: String,
}

pub fn parse(field: &str) -> Option<Order> {
    let (mut id, mut total, mut currency) = (None, None, None);
    for part in field.split(';') {
        let (k, v) = part.split_once('=')?;
        let v = v.trim();
        match k.trim() {
            "id" if !v.is_empty()
                && v.len() <= 40
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) =>
            {
                id = Some(v.to_owned());
            }
            "total" => total = Some(cents(v)?),
            "currency" if v.len() == 3 && v.chars().all(|c| c.is_ascii_alphabetic()) => {
                currency = Some(v.to_ascii_uppercase());
            }
            _ => {}
        }
    }
    Some(Order {
        id: id?,
        cents: total?,
        currency: currency?,
    })
}

/// `59.90` → 5990; at most two decimals, no sign, no exponent.
fn cents(v: &str) -> Option<u64> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if whole.is_empty()
        || frac.len() > 2
        || !whole
            .chars()
            .chain(frac.chars())
            .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    let c = whole.checked_mul(100)?.checked_add(frac)?;
    (c <= MAX_CENTS).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_parse_or_count_as_none() {
        assert_eq!(
            parse("id=1234; total=59.9; currency=eur"),
            Some(Order {
                id: "1234".into(),
                cents: 5990,
                currency: "EUR".into()
            })
        );
        assert_eq!(
            parse("id=7;total=120;currency=USD").map(|o| o.cents),
            Some(12000)
        );
        for bad in [
            "id=1; total=-5; currency=EUR",
            "id=1; total=1e9; currency=EUR",
            "id=1; total=5.999; currency=EUR",
            "id=1; total=99999999999999; currency=EUR",
            "id=<script>; total=5; currency=EUR",
            "total=5; currency=EUR",
            "id=1; total=5; currency=EURO",
            "garbage",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
