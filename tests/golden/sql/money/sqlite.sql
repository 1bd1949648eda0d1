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
), "o_agg" AS (
  SELECT
    "o"."customer_id" AS "customer_id",
    SUM(CASE WHEN "o"."status" = 'paid' THEN CRM_MONEY("o"."total", 'orders.total') END) AS "a0",
    COUNT(*) AS "a1"
  FROM "vo" AS "o"
  GROUP BY
    "o"."customer_id"
), "ids" AS (
  SELECT
    "id" AS "customer_id"
  FROM "customers"
  UNION
  SELECT
    "customer_id"
  FROM "o_agg"
)
SELECT
  "ids"."customer_id" AS "customer_id"
FROM "ids"
LEFT JOIN "customers" AS "c"
  ON "c"."id" = "ids"."customer_id"
LEFT JOIN "o_agg"
  ON "o_agg"."customer_id" = "ids"."customer_id"
WHERE
  NOT "ids"."customer_id" IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= '2026-06-30 23:59:59.999999'
  )
  AND (
    CRM_DIV(COALESCE("o_agg"."a0", 0), CRM_EXACT(COALESCE("o_agg"."a1", 0) * 1000000)) > 10500000
    AND (
      (
        CRM_MONEY("c"."score", 'customers.score') + SIGN(CRM_MONEY("c"."score", 'customers.score')) * 50000
      ) / 100000
    ) * 100000 = 2500000
    AND CRM_MONEY("c"."score", 'customers.score') % NULLIF(2000000, 0) = 1000000
    AND -(
      CRM_MONEY("c"."score", 'customers.score')
    ) < 0
  )
