WITH "vo" AS (
  SELECT
    *
  FROM "orders" AS "o"
  WHERE
    "o"."created_at" IS NULL OR "o"."created_at" <= '2026-06-30 23:59:59.999999'
), "ve" AS (
  SELECT
    *
  FROM "events" AS "e"
  WHERE
    "e"."at" IS NULL OR "e"."at" <= '2026-06-30 23:59:59.999999'
)
SELECT
  "c"."id" AS "customer_id"
FROM "customers" AS "c"
WHERE
  NOT "c"."id" IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= '2026-06-30 23:59:59.999999'
  )
  AND (
    DATE(
      DATE("c"."birthday", 'start of month', '+12 months'),
      PRINTF(
        '+%d days',
        MIN(
          CAST(STRFTIME('%d', "c"."birthday") AS INTEGER),
          CAST(STRFTIME('%d', "c"."birthday", 'start of month', '+13 months', '-1 days') AS INTEGER)
        ) - 1
      )
    ) <= '2026-06-30'
    AND (
      "c"."registered_at" > '2025-12-30 23:59:59.999999'
      AND "c"."registered_at" <= '2026-06-30 23:59:59.999999'
    )
    AND CAST(STRFTIME('%m', "c"."birthday") AS INTEGER) = 6
    AND CAST(JULIANDAY(DATE("c"."registered_at")) - JULIANDAY(DATE("c"."birthday")) AS INTEGER) > 3650
  )
