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
), "oi_top0" AS (
  SELECT
    "order_id",
    "value"
  FROM (
    SELECT
      "i"."order_id" AS "order_id",
      "i"."category" AS "value",
      ROW_NUMBER() OVER (
        PARTITION BY "i"."order_id"
        ORDER BY CASE
          WHEN SUM((
            CRM_EXACT(CRM_MONEY("i"."price", 'order_items.price') * "i"."quantity")
          )) IS NULL
          THEN 1
          ELSE 0
        END NULLS LAST, SUM((
          CRM_EXACT(CRM_MONEY("i"."price", 'order_items.price') * "i"."quantity")
        )) DESC, "i"."category" NULLS LAST
      ) AS "rn"
    FROM "order_items" AS "i"
    WHERE
      NOT "i"."category" IS NULL
    GROUP BY
      "i"."order_id",
      "i"."category"
  ) AS "ranked"
  WHERE
    "rn" = 1
  GROUP BY
    "order_id",
    "value"
), "oi_top1" AS (
  SELECT
    "order_id",
    "value"
  FROM (
    SELECT
      "i"."order_id" AS "order_id",
      "i"."category" AS "value",
      ROW_NUMBER() OVER (
        PARTITION BY "i"."order_id"
        ORDER BY CASE WHEN SUM(1) IS NULL THEN 1 ELSE 0 END NULLS LAST, SUM(1) DESC, "i"."category" NULLS LAST
      ) AS "rn"
    FROM "order_items" AS "i"
    WHERE
      NOT "i"."category" IS NULL
    GROUP BY
      "i"."order_id",
      "i"."category"
  ) AS "ranked"
  WHERE
    "rn" = 1
  GROUP BY
    "order_id",
    "value"
), "oi_agg" AS (
  SELECT
    "i"."order_id" AS "order_id",
    SUM((
      CRM_EXACT(CRM_MONEY("i"."price", 'order_items.price') * "i"."quantity")
    )) AS "a0"
  FROM "order_items" AS "i"
  GROUP BY
    "i"."order_id"
), "o_agg" AS (
  SELECT
    "o"."customer_id" AS "customer_id",
    MAX(CASE WHEN "oi_top1"."value" <> 'bag' THEN COALESCE("oi"."a0", 0) END) AS "a0"
  FROM "vo" AS "o"
  LEFT JOIN "oi_agg" AS "oi"
    ON "oi"."order_id" = "o"."id"
  LEFT JOIN "oi_top0" AS "oi_top0"
    ON "oi_top0"."order_id" = "o"."id"
  LEFT JOIN "oi_top1" AS "oi_top1"
    ON "oi_top1"."order_id" = "o"."id"
  WHERE
    "oi_top1"."value" <> 'bag' AND NOT COALESCE("oi"."a0", 0) IS NULL
  GROUP BY
    "o"."customer_id"
), "top0" AS (
  SELECT
    "customer_id",
    "value"
  FROM (
    SELECT
      "o"."customer_id" AS "customer_id",
      "oi_top0"."value" AS "value",
      ROW_NUMBER() OVER (
        PARTITION BY "o"."customer_id"
        ORDER BY "o"."created_at" ASC NULLS LAST, COALESCE("o"."id", '') NULLS LAST, "oi_top0"."value" NULLS LAST
      ) AS "rn"
    FROM "vo" AS "o"
    LEFT JOIN "oi_agg" AS "oi"
      ON "oi"."order_id" = "o"."id"
    LEFT JOIN "oi_top0" AS "oi_top0"
      ON "oi_top0"."order_id" = "o"."id"
    LEFT JOIN "oi_top1" AS "oi_top1"
      ON "oi_top1"."order_id" = "o"."id"
    WHERE
      NOT "o"."created_at" IS NULL
      AND NOT "oi_top0"."value" IS NULL
      AND "o"."status" = 'paid'
  ) AS "ranked"
  WHERE
    "rn" = 1
), "ids" AS (
  SELECT
    "id" AS "customer_id"
  FROM "customers"
  UNION
  SELECT
    "customer_id"
  FROM "o_agg"
  UNION
  SELECT
    "customer_id"
  FROM "top0"
)
SELECT
  "ids"."customer_id" AS "customer_id"
FROM "ids"
LEFT JOIN "customers" AS "c"
  ON "c"."id" = "ids"."customer_id"
LEFT JOIN "o_agg"
  ON "o_agg"."customer_id" = "ids"."customer_id"
LEFT JOIN "top0"
  ON "top0"."customer_id" = "ids"."customer_id"
WHERE
  NOT "ids"."customer_id" IS NULL
  AND (
    "c"."registered_at" IS NULL
    OR "c"."registered_at" <= '2026-06-30 23:59:59.999999'
  )
  AND (
    "top0"."value" = 'coat' AND "o_agg"."a0" > 100000000
  )
