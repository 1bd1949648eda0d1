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
), "o_agg" AS (
  SELECT
    "o"."customer_id" AS "customer_id",
    COUNT(1) AS "a0"
  FROM "orders" AS "o"
  WHERE
    (
      "o"."created_at" > CAST('2026-05-31 23:59:59.999999' AS TIMESTAMP)
      AND "o"."created_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
    )
  GROUP BY
    "o"."customer_id"
), "e_agg" AS (
  SELECT
    "e"."customer_id" AS "customer_id",
    COUNT(1) AS "a0"
  FROM "events" AS "e"
  WHERE
    (
      "e"."type" = 'add_to_cart'
      AND (
        "e"."at" > CAST('2026-05-31 23:59:59.999999' AS TIMESTAMP)
        AND "e"."at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
      )
    )
  GROUP BY
    "e"."customer_id"
)
SELECT
  "e_agg"."customer_id" AS "customer_id"
FROM "e_agg"
LEFT JOIN "o_agg"
  ON "o_agg"."customer_id" = "e_agg"."customer_id"
WHERE
  NOT "e_agg"."customer_id" IS NULL
  AND NOT "e_agg"."customer_id" IN (
    SELECT
      "c"."id"
    FROM "customers" AS "c"
    WHERE
      NOT (
        "c"."registered_at" IS NULL
        OR "c"."registered_at" <= CAST('2026-06-30 23:59:59.999999' AS TIMESTAMP)
      )
      AND NOT "c"."id" IS NULL
  )
  AND (
    COALESCE("e_agg"."a0", 0) > 0 AND COALESCE("o_agg"."a0", 0) = 0
  )
