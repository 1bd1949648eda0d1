WITH `vo` AS (
  SELECT
    *
  FROM `orders` AS `o`
  WHERE
    `o`.`created_at` IS NULL
    OR `o`.`created_at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
), `ve` AS (
  SELECT
    *
  FROM `events` AS `e`
  WHERE
    `e`.`at` IS NULL OR `e`.`at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
)
SELECT
  `c`.`id` AS `customer_id`
FROM `customers` AS `c`
WHERE
  NOT `c`.`id` IS NULL
  AND (
    `c`.`registered_at` IS NULL
    OR `c`.`registered_at` <= CAST('2026-06-30 23:59:59.999999' AS DATETIME)
  )
  AND (
    COALESCE(
      (
        COALESCE((
          COALESCE(`c`.`age` >= 18, FALSE)
        ), FALSE)
        OR COALESCE((
          COALESCE(`c`.`email_subscribed`, FALSE)
        ), FALSE)
      ),
      FALSE
    )
    AND NOT COALESCE((
      COALESCE(`c`.`vip`, FALSE)
    ), FALSE)
  )
