-- core.benefit_payments for one period: each payment with the municipality of
-- the citizen in the same period's register; payments to a citizen who is not
-- in that register are kept and flagged (citizen_unmatched).
SELECT
    p.payment_id,
    p.citizen_id,
    p.benefit_type,
    p.amount,
    p.payment_date,
    p.booked_at,
    p.is_correction,
    c.municipality_code,
    CASE WHEN c.citizen_id IS NULL THEN 1 ELSE 0 END AS citizen_unmatched,
    p._data_period
FROM stage.benefit_payments p
LEFT JOIN stage.citizens c
    ON c.citizen_id = p.citizen_id
   AND c._data_period = p._data_period
WHERE p._data_period = :period
