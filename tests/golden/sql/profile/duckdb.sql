WITH "vo" AS (
  SELECT
    *
  FROM "orders" AS "o"
  WHERE
    "o"."created_at" IS NULL
    OR "o"."created_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
), "ve" AS (
  SELECT
    *
  FROM "events" AS "e"
  WHERE
    "e"."at" IS NULL OR "e"."at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
)
SELECT
  "c"."id" AS "customer_id"
FROM "customers" AS "c"
WHERE
  NOT "c"."id" IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
  )
  AND (
    (
      "c"."points" > 100
      AND LIST_CONTAINS("c"."tags", 'coat')
      AND DATE_DIFF('DAY', CAST("c"."registered_at" AS DATE), CAST('2026-06-30' AS DATE)) < 30
    )
    OR (
      "c"."age" < 20 AND "c"."gender" = 'female'
    )
  )
