WITH "vo" AS (
  SELECT
    *
  FROM "orders"
  WHERE
    "created_at" <= toDateTime64('2026-06-30 23:59:59.999999', 6)
    OR "created_at" IS NULL
), "ve" AS (
  SELECT
    *
  FROM "events"
  WHERE
    "at" <= toDateTime64('2026-06-30 23:59:59.999999', 6) OR "at" IS NULL
), "ids" AS (
  SELECT
    "id"
  FROM (
    SELECT
      "id" AS "id"
    FROM "customers"
    UNION DISTINCT
    SELECT
      "customer_id"
    FROM "vo"
    UNION DISTINCT
    SELECT
      "customer_id"
    FROM "ve"
  ) AS "u"
  WHERE
    NOT (
      "id" IS NULL
    )
)
SELECT
  "ids"."id" AS "customer_id"
FROM "ids"
LEFT JOIN "customers" AS "c"
  ON "c"."id" = "ids"."id"
WHERE
  (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= toDateTime64('2026-06-30 23:59:59.999999', 6)
  )
  AND COALESCE(
    (
      toDate(addYears("c"."birthday", 1)) <= CAST('2026-06-30' AS Nullable(DATE))
      AND (
        "c"."registered_at" > toDateTime64('2025-12-30 23:59:59.999999', 6)
        AND "c"."registered_at" <= toDateTime64('2026-06-30 23:59:59.999999', 6)
      )
      AND EXTRACT(MONTH FROM "c"."birthday") = 6
      AND dateDiff(
        'day',
        CAST("c"."birthday" AS Nullable(DATE)),
        CAST("c"."registered_at" AS Nullable(DATE))
      ) > 3650
    ),
    FALSE
  )
