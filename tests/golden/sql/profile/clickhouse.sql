WITH "vo" AS (
  SELECT
    *
  FROM "orders" AS "o"
  WHERE
    "o"."created_at" IS NULL
    OR "o"."created_at" <= toDateTime64('2026-06-30 23:59:59.999999', 6)
), "ve" AS (
  SELECT
    *
  FROM "events" AS "e"
  WHERE
    "e"."at" IS NULL OR "e"."at" <= toDateTime64('2026-06-30 23:59:59.999999', 6)
)
SELECT
  "c"."id" AS "customer_id"
FROM "customers" AS "c"
WHERE
  NOT (
    "c"."id" IS NULL
  )
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= toDateTime64('2026-06-30 23:59:59.999999', 6)
  )
  AND (
    (
      "c"."points" > 100
      AND CASE
        WHEN "c"."tags" IS NULL
        THEN NULL
        ELSE COALESCE(has("c"."tags", 'coat'), FALSE)
      END
      AND dateDiff(
        'day',
        CAST("c"."registered_at" AS Nullable(DATE)),
        CAST('2026-06-30' AS Nullable(DATE))
      ) < 30
    )
    OR (
      "c"."age" < 20 AND "c"."gender" = 'female'
    )
  )
